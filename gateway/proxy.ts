// The per-run model gateway's proxy: the agent in the sandbox talks to this (through a unix socket and a bridge) with a
// placeholder key; the proxy swaps in the real key, forwards to the vendor, meters tokens (meter.ts) and enforces the
// run's budget. The real key never enters the sandbox; an unlisted upstream must be public (upstreamGuard.ts).
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import { type Duplex, pipeline, Transform } from 'node:stream';
import { internalAddress } from '../spec/network';
import type { GatewayUsage } from '../contracts/run';
import type { ModelPrices } from './prices';
import type { SharedBudget } from './sharedBudget';
import { type Tokens, ResponseMeter } from './meter';
import { InternalUpstream, publicLookup } from './upstreamGuard';

export type ModelVendor = 'anthropic' | 'openai';

/** What the sandbox is given instead of the real key; the gateway ignores whatever key it sends. */
export const PLACEHOLDER_KEY = 'nightshift-gateway-placeholder';

export interface GatewayRequest {
  method: string;
  /** Request path without the query. */
  path: string;
  status: number;
  inputTokens: number;
  outputTokens: number;
  /** Set when the gateway refused without contacting the upstream (budget exhausted). */
  refused?: string;
  /** A limit above the run refused it: when its window rolls over (epoch ms). */
  refusedUntil?: number;
  /** Set when the upstream could not be reached or the exchange broke off. */
  error?: string;
}

export interface GatewayOptions {
  vendor: ModelVendor;
  /** Base URL, http or https, optionally with a path prefix: `http://host:port/v1` + `/responses` ⇒ `/v1/responses`. */
  upstream: string;
  /**
   * The server's admin listed this upstream (NIGHTSHIFT_MODEL_UPSTREAMS): it may be an internal address. Otherwise (a
   * vendor's default API) the gateway refuses to connect where the name resolves to an internal address.
   */
  adminListed?: boolean;
  apiKey: string;
  /** Input + output tokens for the whole run. */
  maxTokens?: number;
  maxCostUsd?: number;
  /** USD per million tokens; required for maxCostUsd. */
  prices?: ModelPrices;
  /** The limits above the run, shared by every run's gateway, and the ledger each request is booked in. */
  shared?: SharedBudget;
  onRequest?: (r: GatewayRequest) => void;
}

// RFC 7230 hop-by-hop headers, plus `expect` (this server already answered any 100-continue).
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
];
// Whatever credentials the sandbox sends are dropped; only the injected key goes upstream.
const SANDBOX_CREDENTIALS = ['authorization', 'x-api-key', 'api-key', 'proxy-authorization'];
/** A run names a few models at most; more is noise (or a hostile upstream), not provenance. */
const MAX_MODELS = 10;
/** How long a request held near a limit above the run waits before asking the ledger again. */
const SHARED_WAIT_MS = 200;

/** Reports how a forwarded request ended, once: whichever of its ends comes first. */
type ReportOnce = (r: Omit<GatewayRequest, 'method' | 'path'>) => void;

/**
 * An HTTP gateway on a unix socket for one agent exec: forwards every request to `upstream` with the real key, meters
 * tokens from the responses (JSON or SSE, streamed through unbuffered) and refuses requests once the run's budget is
 * spent. A request under budget is forwarded whole, so the one that crosses the budget completes; later ones are
 * refused. Not metered: OpenAI chat-completion streams without `stream_options.include_usage` (they carry no usage).
 */
export class ModelGateway {
  private readonly server: http.Server;
  private readonly sockets = new Set<Duplex>();
  private readonly upstream: URL;
  private readonly agent: http.Agent;
  private readonly totals: GatewayUsage;
  private socketPath?: string;

  constructor(
    private readonly opts: GatewayOptions,
    usage?: GatewayUsage,
  ) {
    // Messages here never include the key: they may end up in a run's log.
    let url: URL;
    try {
      url = new URL(opts.upstream);
    } catch {
      throw new Error('model gateway: upstream is not a URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`model gateway: upstream must be http or https, not ${url.protocol}`);
    if (!/^[\x21-\x7e]+$/.test(opts.apiKey ?? ''))
      throw new Error('model gateway: the API key is empty or has characters not allowed in a header');
    if (opts.maxCostUsd !== undefined && !opts.prices) throw new Error('model gateway: maxCostUsd needs prices');
    this.upstream = url;
    this.agent = url.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    this.totals = {
      requests: 0,
      inputTokens: 0,
      outputTokens: 0,
      costUsd: 0,
      ...usage,
      ...(usage?.models ? { models: [...usage.models] } : {}),
    };
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s: Duplex) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(socketPath: string): Promise<void> {
    try {
      if (fs.lstatSync(socketPath).isSocket()) fs.unlinkSync(socketPath); // left by a crashed worker
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.socketPath = socketPath;
    fs.chmodSync(socketPath, 0o666); // the sandbox's user may differ from the worker's
  }

  usage(): GatewayUsage {
    return { ...this.totals, ...(this.totals.models ? { models: [...this.totals.models] } : {}) };
  }

  /** Stops listening and cuts every connection, idle keep-alive and mid-stream alike. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await closed;
    if (this.socketPath) fs.rmSync(this.socketPath, { force: true });
  }

  /** Why a request is refused now, or undefined while the budget lasts. */
  private exhausted(): string | undefined {
    const { maxTokens, maxCostUsd } = this.opts;
    const used = this.totals.inputTokens + this.totals.outputTokens;
    if (maxTokens !== undefined && used >= maxTokens)
      return `nightshift: token budget of ${maxTokens} exhausted (used ${used})`;
    if (maxCostUsd !== undefined && this.totals.costUsd >= maxCostUsd) {
      return `nightshift: cost budget of $${maxCostUsd} exhausted (used $${this.totals.costUsd.toFixed(6)})`;
    }
    return undefined;
  }

  private add(t: Tokens): void {
    this.totals.inputTokens += t.input;
    this.totals.outputTokens += t.output;
    const p = this.opts.prices;
    if (p) this.totals.costUsd += (t.input * p.inputPerMTok + t.output * p.outputPerMTok) / 1e6;
  }

  private sawModel(model: string): void {
    const models = (this.totals.models ??= []);
    if (!models.includes(model) && models.length < MAX_MODELS) models.push(model);
  }

  private report(r: GatewayRequest): void {
    try {
      this.opts.onRequest?.(r);
    } catch {
      // a failing log write must not take the gateway down
    }
  }

  /** An error the gateway itself makes, in the vendor's shape so the agent's SDK shows the message. */
  private fail(
    res: http.ServerResponse,
    status: 429 | 502,
    message: string,
    headers: http.OutgoingHttpHeaders = {},
  ): void {
    const safe = message.split(this.opts.apiKey).join('[redacted]');
    const budget = status === 429;
    const body =
      this.opts.vendor === 'anthropic'
        ? { type: 'error', error: { type: budget ? 'rate_limit_error' : 'api_error', message: safe } }
        : {
            error: {
              message: safe,
              type: budget ? 'insufficient_quota' : 'server_error',
              code: budget ? 'nightshift_budget' : 'nightshift_upstream',
            },
          };
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    // Clients send origin-form (`/v1/messages?x`); absolute-form is accepted too, but only its path and query are
    // used: the host is always the configured upstream. Parsing also resolves `..`, so a request cannot climb out of
    // the upstream's path prefix.
    let target: URL;
    try {
      target = new URL(req.url ?? '/', 'http://gateway');
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('nightshift: malformed request target\n');
      this.report({
        method,
        path: String(req.url).slice(0, 200),
        status: 400,
        inputTokens: 0,
        outputTokens: 0,
        error: 'malformed request target',
      });
      return;
    }
    const path = target.pathname;
    // An encoded slash is not a segment to the URL parser, but a server behind the upstream may decode it and climb.
    if (/%2f|%5c/i.test(path)) {
      res
        .writeHead(400, { 'content-type': 'text/plain' })
        .end('nightshift: encoded slashes are not allowed in the path\n');
      this.report({
        method,
        path: path.slice(0, 200),
        status: 400,
        inputTokens: 0,
        outputTokens: 0,
        error: 'encoded slash in the path',
      });
      return;
    }
    const refused = this.exhausted();
    if (refused) {
      this.refuse(req, res, method, path, refused);
      return;
    }
    this.admitShared(req, res, method, path, target.search);
  }

  private refuse(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    path: string,
    refused: string,
    refusedUntil?: number,
  ): void {
    req.on('error', () => undefined);
    req.resume();
    // x-should-retry: the Anthropic and OpenAI SDKs otherwise retry a 429 with backoff, to the same answer.
    this.fail(res, 429, refused, { 'x-should-retry': 'false' });
    this.report({ method, path, status: 429, inputTokens: 0, outputTokens: 0, refused, refusedUntil });
  }

  /**
   * Forwarded once the limits above the run admit it: refused when one is spent; held (the client waiting) while
   * others' requests are in flight near one.
   */
  private admitShared(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    path: string,
    search: string,
  ): void {
    const { shared } = this.opts;
    const id = randomUUID();
    let admission;
    try {
      admission = shared ? shared.admit(id) : { admitted: true as const };
    } catch (err) {
      this.refuse(req, res, method, path, `nightshift: the spend ledger failed (${(err as Error).message})`);
      return;
    }
    if ('refused' in admission) this.refuse(req, res, method, path, admission.refused, admission.until);
    else if ('admitted' in admission) this.forward(req, res, method, path, search, id);
    else {
      const retry = setTimeout(() => this.admitShared(req, res, method, path, search), SHARED_WAIT_MS);
      res.once('close', () => clearTimeout(retry));
    }
  }

  private forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    path: string,
    search: string,
    id: string,
  ): void {
    let done = false;
    let model: string | undefined;
    const finish: ReportOnce = (r) => {
      if (done) return;
      done = true;
      this.report({ method, path, ...r });
      this.book(id, model, r.inputTokens, r.outputTokens);
    };
    const unreachable = (err: Error) => this.unreachable(req, res, err, finish);
    let upstreamReq: http.ClientRequest;
    try {
      upstreamReq = this.upstreamRequest(method, path, search, this.upstreamHeaders(req));
    } catch (err) {
      unreachable(err as Error); // e.g. a header value node refuses
      return;
    }
    this.totals.requests++;
    upstreamReq.on('error', unreachable);
    // The client hung up before the response was done: stop the upstream too.
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.on('error', () => upstreamReq.destroy()); // the client went away mid-upload
    req.pipe(upstreamReq);
    upstreamReq.on('response', (up) =>
      this.relay(up, res, finish, (m) => {
        model ??= m;
        this.sawModel(m);
      }),
    );
  }

  /** The request in the spend ledger, under the model its response named (else the one the run asked for). */
  private book(id: string, model: string | undefined, inputTokens: number, outputTokens: number): void {
    const p = this.opts.prices;
    const costUsd = p ? (inputTokens * p.inputPerMTok + outputTokens * p.outputPerMTok) / 1e6 : 0;
    // Only the run's first few models: an upstream the spec chose must not grow the ledger a row a request.
    const named = model && this.totals.models?.includes(model) ? model : '';
    try {
      this.opts.shared?.settle(id, { model: named, inputTokens, outputTokens, costUsd });
    } catch {
      // the run's own meter has it; the ledger missing one request must not break the agent's exchange
    }
  }

  /** The client's headers without hop-by-hop ones and the sandbox's credentials; the real key in their place. */
  private upstreamHeaders(req: http.IncomingMessage): http.OutgoingHttpHeaders {
    const headers: http.OutgoingHttpHeaders = {};
    const named = String(req.headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((h) => h.trim());
    for (const [name, value] of Object.entries(req.headers)) {
      if (HOP_BY_HOP.includes(name) || SANDBOX_CREDENTIALS.includes(name) || named.includes(name) || name === 'host')
        continue;
      headers[name] = value;
    }
    headers.host = this.upstream.host;
    headers['accept-encoding'] = 'identity'; // compressed bodies could not be metered
    if (this.opts.vendor === 'anthropic') headers['x-api-key'] = this.opts.apiKey;
    else headers.authorization = `Bearer ${this.opts.apiKey}`;
    return headers;
  }

  /** The request to the upstream; throws InternalUpstream for an internal address literal the admin did not list. */
  private upstreamRequest(
    method: string,
    path: string,
    search: string,
    headers: http.OutgoingHttpHeaders,
  ): http.ClientRequest {
    const base = this.upstream;
    // Joining rule: upstream pathname (trailing slashes trimmed) + request path, plainly concatenated; the upstream's
    // own query, if any, comes first.
    const upstreamPath = base.pathname.replace(/\/+$/, '') + path;
    const query = [base.search.slice(1), search.slice(1)].filter(Boolean).join('&');
    const request = base.protocol === 'https:' ? https.request : http.request;
    const hostname = base.hostname.replace(/^\[|\]$/g, '');
    // An address literal is never looked up, so it is checked here.
    const literal = !this.opts.adminListed && isIP(hostname) ? internalAddress(hostname) : undefined;
    if (literal) throw new InternalUpstream(`${hostname} is ${literal}`);
    return request({
      protocol: base.protocol,
      hostname,
      lookup: this.opts.adminListed ? undefined : publicLookup,
      port: base.port || undefined,
      method,
      path: upstreamPath + (query ? `?${query}` : ''),
      headers,
      agent: this.agent,
    });
  }

  /** The upstream failed before answering: a 502 to the client (or a 499 report, when the client went away first). */
  private unreachable(req: http.IncomingMessage, res: http.ServerResponse, err: Error, finish: ReportOnce): void {
    if (res.headersSent) return; // mid-response: the response pipeline reports it
    if (res.destroyed) {
      // 499, as nginx logs it: the client closed the connection before the answer (and we cut the upstream)
      finish({ status: 499, inputTokens: 0, outputTokens: 0, error: 'the client went away' });
      return;
    }
    req.unpipe();
    req.resume(); // drain the rest of the body so the client reads the answer, not a reset
    const host = this.upstream.host;
    const message =
      err instanceof InternalUpstream
        ? `nightshift: model API ${host} refused: ${err.message}, and only the server's admin can list such an upstream`
        : `nightshift: model API ${host} unreachable (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    this.fail(res, 502, message);
    finish({ status: 502, inputTokens: 0, outputTokens: 0, error: message });
  }

  /** The upstream's answer passed to the client as it comes, metered on the way. */
  private relay(
    up: http.IncomingMessage,
    res: http.ServerResponse,
    finish: ReportOnce,
    onModel: (model: string) => void,
  ): void {
    const status = up.statusCode ?? 502;
    const type = String(up.headers['content-type'] ?? '').toLowerCase();
    const meter = new ResponseMeter(
      type.startsWith('text/event-stream') ? 'sse' : type.includes('json') ? 'json' : 'other',
      (d) => this.add(d),
      onModel,
    );
    const responseHeaders: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(up.headers))
      if (!HOP_BY_HOP.includes(name)) responseHeaders[name] = value;
    res.writeHead(status, responseHeaders);
    res.flushHeaders(); // SSE: the client sees the response start before the first event
    const tee = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        meter.feed(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        meter.end();
        cb();
      },
    });
    pipeline(up, tee, res, (err) => {
      const tokens = { inputTokens: meter.seen.input, outputTokens: meter.seen.output };
      finish(
        err
          ? { status, ...tokens, error: `response cut off (${(err as NodeJS.ErrnoException).code ?? 'error'})` }
          : { status, ...tokens },
      );
    });
  }
}
