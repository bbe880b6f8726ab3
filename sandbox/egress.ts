import { promises as dns } from 'node:dns';
import * as http from 'node:http';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { internalAddress, normalizeHost, Openings, parseNetworkRule, type NetworkRule } from '../spec/network';

export interface EgressDecision {
  allowed: boolean;
  method: string;
  target: string;
  reason: string;
}

/** Every address a name resolves to, as connecting would see them. */
export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = async (host) =>
  (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * The egress policy of one run: which host:port it may reach. Enforcement is the sandbox's empty network namespace;
 * this proxy, reached through a unix socket, is the only way out, and it asks here first. An internal address
 * (loopback, private, link-local, the server's own …) is refused even when the spec allows its host, unless the
 * server's admin opened that host:port (NIGHTSHIFT_EGRESS_INTERNAL): that is where the control plane lives.
 */
export class EgressPolicy {
  private readonly rules: NetworkRule[];
  private readonly openings: Openings;

  /** `resolver` is the system's (getaddrinfo: /etc/hosts, then DNS); another stands in for a DNS server's answers. */
  constructor(
    entries: string[],
    internal: string[] = [],
    private readonly resolver: Resolver = systemResolver,
  ) {
    this.rules = entries.map(parseNetworkRule);
    this.openings = new Openings(internal);
  }

  /** The rule that allows host:port, or why none does. The host is compared in its normalized spelling. */
  check(host: string, port: number): { rule?: NetworkRule; reason: string } {
    const h = normalizeHost(host)?.replace(/\.$/, '');
    if (!h || host.length > 253) return { reason: 'malformed host name' };
    for (const rule of this.rules) {
      const hostOk = rule.wildcard ? h.endsWith(`.${rule.host}`) : h === rule.host;
      const portOk = rule.port === undefined ? port === 80 || port === 443 : port === rule.port;
      if (hostOk && portOk)
        return {
          rule,
          reason: `allowed by ${rule.wildcard ? '*.' : ''}${rule.host}${rule.port ? `:${rule.port}` : ''}`,
        };
    }
    return { reason: net.isIP(h) ? 'IP literal not in the allowlist' : 'not in the allowlist' };
  }

  /**
   * The address to connect to for an allowed host:port. Every address the name resolves to is checked, and the one
   * returned is connected to as is: a DNS answer that changes between check and connect is never asked for again.
   */
  async resolve(host: string, port: number): Promise<{ address?: string; reason: string }> {
    const h = normalizeHost(host)?.replace(/\.$/, '');
    if (!h) return { reason: 'malformed host name' };
    let addresses = [h];
    if (!net.isIP(h)) {
      try {
        addresses = await this.resolver(h);
      } catch (err) {
        return { reason: `cannot resolve ${h}: ${(err as NodeJS.ErrnoException).code}` };
      }
    }
    const opened = this.openings.has(h, port);
    for (const address of addresses) {
      const internal = internalAddress(address);
      if (internal && !opened && !this.openings.has(address, port)) {
        return {
          reason: `${h} ${net.isIP(h) ? 'is' : 'resolves to'} ${internal}, which the server's admin has not opened (NIGHTSHIFT_EGRESS_INTERNAL)`,
        };
      }
    }
    if (!addresses.length) return { reason: `cannot resolve ${h}: no address` };
    return { address: addresses[0], reason: 'ok' };
  }
}

/**
 * An HTTP proxy (CONNECT for TLS, absolute-URI requests for plain HTTP) on a unix socket, deciding every connection by
 * the run's EgressPolicy and reporting each decision.
 */
export class EgressProxy {
  private readonly server: http.Server;
  private readonly sockets = new Set<Duplex>();

  constructor(
    private readonly policy: EgressPolicy,
    private readonly onDecision: (d: EgressDecision) => void,
  ) {
    this.server = http.createServer((req, res) => void this.forward(req, res));
    this.server.on(
      'connect',
      (req: http.IncomingMessage, client: Duplex, head: Buffer) => void this.tunnel(req, client, head),
    );
    this.server.on('connection', (s: Duplex) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  listen(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(socketPath, () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Decide host:port; returns the address to connect to, or undefined after reporting the denial. */
  private async decide(method: string, host: string, port: number): Promise<string | undefined> {
    const target = `${host}:${port}`;
    const { rule, reason } = this.policy.check(host, port);
    if (!rule) {
      this.onDecision({ allowed: false, method, target, reason });
      return undefined;
    }
    const resolved = await this.policy.resolve(host, port);
    this.onDecision({
      allowed: Boolean(resolved.address),
      method,
      target,
      reason: resolved.address ? reason : resolved.reason,
    });
    return resolved.address;
  }

  private async tunnel(req: http.IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(req.url ?? '');
    const address = m ? await this.decide('CONNECT', m[1], Number(m[2])) : undefined;
    if (!m)
      this.onDecision({
        allowed: false,
        method: 'CONNECT',
        target: String(req.url).slice(0, 200),
        reason: 'malformed target',
      });
    if (!address) {
      client.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nnightshift: egress denied\n');
      return;
    }
    const upstream = net.connect(Number(m![2]), address, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    this.sockets.add(upstream);
    upstream.on('close', () => this.sockets.delete(upstream));
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    client.on('error', () => upstream.destroy());
  }

  private async forward(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
      if (url.protocol !== 'http:') throw new Error('not http');
    } catch {
      this.onDecision({
        allowed: false,
        method: req.method ?? '?',
        target: String(req.url).slice(0, 200),
        reason: 'not an absolute http:// URL',
      });
      res.writeHead(400).end('nightshift: use an absolute http:// URL, or CONNECT for https\n');
      return;
    }
    const port = Number(url.port || 80);
    const address = await this.decide(req.method ?? 'GET', url.hostname, port);
    if (!address) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('nightshift: egress denied\n');
      return;
    }
    const upstream = http.request(
      {
        host: address,
        port,
        method: req.method,
        path: `${url.pathname}${url.search}`,
        headers: { ...req.headers, host: url.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end('nightshift: upstream unreachable\n'));
    req.pipe(upstream);
  }
}
