import { BlockList, isIP, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

/** One entry of `sandbox.network`: a host (or `*.suffix`) and a port (none = the web ports, 80 and 443). */
export interface NetworkRule {
  host: string;
  wildcard: boolean;
  port?: number;
  isIp: boolean;
}

export const CONTROL_OR_SPACE = /[\x00-\x1f\x7f\s]/;

/**
 * A host as connecting would see it, or undefined when it is not a host: lower-cased, every IPv4 spelling made dotted
 * (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1` → 127.0.0.1), IPv6 compressed and without brackets. The WHATWG URL
 * host parser does this, the same one curl-like clients and Node use; a trailing dot is kept on names.
 */
export function normalizeHost(host: string): string | undefined {
  if (!host || CONTROL_OR_SPACE.test(host) || /[/?#@\\%]/.test(host) || host.length > 255) return undefined;
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  try {
    return new URL(`http://${isIPv6(bare) ? `[${bare}]` : host}`).hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return undefined;
  }
}

/**
 * `host`, `host:port`, `*.suffix`, `*.suffix:port`, IPv4 literals (any spelling, stored dotted); lower-cased. Throws
 * with a reason otherwise.
 */
export function parseNetworkRule(entry: string): NetworkRule {
  if (CONTROL_OR_SPACE.test(entry))
    throw new Error(`"${entry.replace(CONTROL_OR_SPACE, '?')}" has control characters or spaces`);
  const m = /^(\*\.)?([a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(entry);
  if (!m || (m[3] && (Number(m[3]) < 1 || Number(m[3]) > 65535)))
    throw new Error(`"${entry}" is not host[:port] or *.suffix[:port]`);
  // A trailing dot names the same host (an absolute DNS name).
  const host = normalizeHost(m[2])?.replace(/\.$/, '');
  if (!host) throw new Error(`"${entry}" does not name a host`);
  // `*.0.1` would be read as the address 0.0.0.1 by the host parser: a wildcard needs a name.
  if (m[1] && isIP(host)) throw new Error(`"${entry}": a wildcard needs a domain name, not an address`);
  return { host, wildcard: Boolean(m[1]), port: m[3] ? Number(m[3]) : undefined, isIp: isIP(host) !== 0 };
}

// What the threat model names: loopback, unspecified, private (RFC 1918, ULA), CGNAT, link-local (cloud metadata),
// multicast, broadcast, and IPv6 forms that carry an IPv4 address (::/96 compatible; ::ffff:0:0/96 mapped is matched
// against the IPv4 subnets by BlockList itself). Not "reserved" or documentation ranges: package registries resolve
// into 203.0.113.0/24 on some machines.
const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 4],
  ['255.255.255.255', 32],
] as const) {
  INTERNAL.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  INTERNAL.addSubnet(net, prefix, 'ipv6');

/** The IPv4 address inside a NAT64 (64:ff9b::/96, 64:ff9b:1::/48) or 6to4 (2002::/16) IPv6 address. */
function embeddedIPv4(address: string): string | undefined {
  const groups = expandIPv6(address);
  if (!groups) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  if (groups[0] === 0x64 && groups[1] === 0xff9b && (groups[2] === 1 || groups.slice(2, 6).every((g) => g === 0)))
    return v4(groups[6], groups[7]);
  if (groups[0] === 0x2002) return v4(groups[1], groups[2]);
  return undefined;
}

function expandIPv6(address: string): number[] | undefined {
  // The URL parser writes a trailing dotted IPv4 part in hex; Node's own formatting may not.
  const normalized = normalizeHost(address);
  if (!normalized || !isIPv6(normalized)) return undefined;
  const [head, tail = ''] = normalized.split('::');
  const parse = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = normalized.includes('::') ? parse(tail) : [];
  return [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
}

/** The addresses of this machine's own interfaces, read each time (they change). */
function ownAddresses(): Set<string> {
  const own = new Set<string>();
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) own.add(normalizeHost(a.address.replace(/%.*$/, '')) ?? a.address);
  return own;
}

/** Why an IP address is internal (the host's own, loopback, private …), or undefined when it is public. */
export function internalAddress(address: string): string | undefined {
  const ip = normalizeHost(address);
  if (!ip || !isIP(ip)) return undefined;
  const family = isIPv6(ip) ? 'ipv6' : 'ipv4';
  if (INTERNAL.check(ip, family)) return `internal address ${ip}`;
  const inner = family === 'ipv6' ? embeddedIPv4(ip) : undefined;
  if (inner && INTERNAL.check(inner, 'ipv4')) return `internal address ${ip} (carries ${inner})`;
  if (ownAddresses().has(ip)) return `this server's own address ${ip}`;
  return undefined;
}

/** `localhost` and names under it (RFC 6761): resolvers answer them with loopback without asking DNS. */
export function isLocalhostName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

/** Why a rule names an internal host by itself (an internal literal, or a localhost name), or undefined. */
export function internalRule(rule: NetworkRule): string | undefined {
  if (rule.isIp) return internalAddress(rule.host);
  return isLocalhostName(rule.host) ? `the loopback name ${rule.host}` : undefined;
}

/**
 * The internal `host:port` pairs the server's admin opened (NIGHTSHIFT_EGRESS_INTERNAL), in the normalized form
 * `Openings.has` compares against. Only exact host:port entries: a wildcard or a port-less entry would open too much.
 */
export class Openings {
  private readonly entries: Set<string>;

  constructor(list: string[] = []) {
    this.entries = new Set(
      list.map((entry) => {
        const rule = parseNetworkRule(entry);
        if (rule.wildcard || rule.port === undefined) throw new Error(`"${entry}" must be an exact host:port`);
        return `${rule.host}:${rule.port}`;
      }),
    );
  }

  has(host: string, port: number): boolean {
    const h = normalizeHost(host);
    return h !== undefined && this.entries.has(`${h.replace(/\.$/, '')}:${port}`);
  }

  /** Whether every port a rule covers is opened for its host. */
  opens(rule: NetworkRule): boolean {
    return !rule.wildcard && (rule.port ? [rule.port] : [80, 443]).every((p) => this.has(rule.host, p));
  }
}

/** The entries of a spec's `sandbox.network` that name an internal host the admin has not opened, each with why. */
export function unopenedInternal(
  network: string[],
  openings: Openings,
): { index: number; entry: string; why: string }[] {
  const refused: { index: number; entry: string; why: string }[] = [];
  network.forEach((entry, index) => {
    const rule = parseNetworkRule(entry);
    const why = internalRule(rule);
    if (why && !openings.opens(rule)) refused.push({ index, entry, why });
  });
  return refused;
}

/**
 * A model API base URL in the form upstreams are compared in: scheme, lower-cased host, explicit port, path without
 * trailing slashes (`..` already resolved by the URL parser). Throws with a reason for what is never a base URL:
 * userinfo (`https://api.anthropic.com@127.0.0.1` goes to 127.0.0.1), a query or a fragment.
 */
export function normalizeBaseUrl(raw: string): string {
  if (CONTROL_OR_SPACE.test(raw)) throw new Error('has control characters or spaces');
  if (/^[a-z][a-z0-9+.-]*:\/*[^/?#\\]*@/i.test(raw)) throw new Error('has user:password@ (userinfo)');
  if (/[?#]/.test(raw)) throw new Error('has a query or fragment');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('must be http or https');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return `${url.protocol}//${url.hostname}:${port}${url.pathname.replace(/\/+$/, '')}`;
}
