import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelGateway, PLACEHOLDER_KEY, type GatewayOptions, type GatewayRequest } from '../gateway/proxy';
import type { GatewayUsage } from '../contracts/run';
import { readSpendRows } from '../budget/ledger';
import { parseBudget, type BudgetLimit } from '../spec/budget';
import { sharedBudget } from '../gateway/sharedBudget';

const KEY = `sk-real-${randomBytes(16).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or a failure naming `what` after `ms`: a hang fails fast instead of at jest's timeout. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)),
  );
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// Anthropic: 12 + 3 cache writes + 5 cache reads in, 7 out.
const ANTHROPIC_JSON = {
  id: 'msg_1',
  type: 'message',
  role: 'assistant',
  model: 'claude-x-20261101',
  content: [{ type: 'text', text: 'hello' }],
  stop_reason: 'end_turn',
  usage: { input_tokens: 12, cache_creation_input_tokens: 3, cache_read_input_tokens: 5, output_tokens: 7 },
};
// Anthropic stream: 25 + 10 cache reads in; output_tokens is cumulative (1 at start, 15 at the end), so 15 out.
const ANTHROPIC_SSE = [
  'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_2","type":"message","role":"assistant","model":"claude-x-20261101","content":[],"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":1}}}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi ☃"}}\n\n',
  'event: ping\ndata: {"type": "ping"}\n\n',
  // one event split across writes, mid-line: the gateway must reassemble it
  'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"us',
  'age":{"output_tokens":15}}\n\n',
  'event: message_stop\ndata: {"type":"message_stop"}\n\n',
];
// OpenAI Responses stream (CRLF line ends): 40 in (30 of them cached, already included), 9 out.
const OPENAI_SSE = [
  'event: response.created\r\ndata: {"type":"response.created","response":{"id":"resp_1","status":"in_progress","usage":null}}\r\n\r\n',
  'event: response.output_text.delta\r\ndata: {"type":"response.output_text.delta","delta":"hi"}\r\n\r\n',
  'event: response.completed\r\ndata: {"type":"response.completed","response":{"id":"resp_1","status":"completed","model":"gpt-x-2026-11-01","usage":{"input_tokens":40,"input_tokens_details":{"cached_tokens":30},"output_tokens":9,"total_tokens":49}}}\r\n\r\n',
];
// Its model id is no plain id (a hostile upstream's, say): not recorded.
const CHAT_JSON = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  model: 'gpt-x\n<script>',
  choices: [],
  usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 },
};

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Stands in for the vendor's model API: records what it receives and answers by path. */
interface FakeApi {
  base: string;
  host: string;
  seen: Seen[];
  /** True once the Anthropic stream has been fully written. */
  streamEnded: boolean;
  /** The Anthropic stream holds after its first event until this is called (or 3 s pass). */
  openGate(): void;
  close(): Promise<void>;
}

async function startFakeApi(): Promise<FakeApi> {
  let openGate = (): void => undefined;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  // a request the gateway cut off
  const server = http.createServer((req, res) => void answer(req, res).catch(() => res.destroy()));
  const api: FakeApi = {
    base: '',
    host: '',
    seen: [],
    streamEnded: false,
    openGate: () => openGate(),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  async function answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    api.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    if (pathname === '/v1/messages' && JSON.parse(body).stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(ANTHROPIC_SSE[0]);
      await Promise.race([gate, new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
      for (const piece of ANTHROPIC_SSE.slice(1)) {
        await sleep(20);
        res.write(piece);
      }
      api.streamEnded = true;
      res.end();
    } else if (pathname === '/v1/messages') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(ANTHROPIC_JSON));
    } else if (pathname === '/v1/responses') {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      for (const piece of OPENAI_SSE) {
        res.write(piece);
        await sleep(10);
      }
      res.end();
    } else if (pathname === '/v1/chat/completions') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(CHAT_JSON));
    } else if (pathname === '/v1/stall') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(ANTHROPIC_SSE[0]); // and never ends
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such path"}');
    }
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  api.host = `127.0.0.1:${port}`;
  api.base = `http://${api.host}`;
  return api;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The whole response arrived (false when the connection was cut). */
  complete: boolean;
}

/** A client in the sandbox's place: talks to the gateway over its unix socket. */
function call(
  socketPath: string,
  urlPath: string,
  o: {
    method?: string;
    headers?: http.OutgoingHttpHeaders;
    body?: string;
    agent?: http.Agent;
    onFirstChunk?: (chunk: string) => void;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path: urlPath, method: o.method ?? 'POST', headers: o.headers, agent: o.agent },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (!body) o.onFirstChunk?.(chunk);
          body += chunk;
        });
        res.on('error', () => undefined); // a cut connection shows as complete: false
        res.on('close', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, complete: res.complete }),
        );
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await within(5000, 'cleanup', Promise.resolve(cleanup()));
});

async function fakeApi(): Promise<FakeApi> {
  const api = await startFakeApi();
  cleanups.push(() => api.close());
  return api;
}

async function startGateway(opts: Omit<GatewayOptions, 'apiKey'>, usage?: GatewayUsage) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'gateway.sock');
  const reports: GatewayRequest[] = [];
  // The fake API is on loopback: an upstream only the admin can list (NIGHTSHIFT_MODEL_UPSTREAMS).
  const gw = new ModelGateway({ apiKey: KEY, adminListed: true, onRequest: (r) => reports.push(r), ...opts }, usage);
  await gw.listen(socketPath);
  cleanups.push(() => gw.close());
  return { gw, socketPath, reports };
}

const anthropicRequest = (stream = false) => ({
  headers: { 'content-type': 'application/json', 'x-api-key': PLACEHOLDER_KEY, 'anthropic-version': '2023-06-01' },
  body: JSON.stringify({ model: 'claude-x', max_tokens: 100, stream, messages: [{ role: 'user', content: 'hi' }] }),
});

/** A port that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('anthropic: the real key replaces every credential the sandbox sent; headers, path, query and body pass through; JSON usage is counted', async () => {
  const api = await fakeApi();
  const { gw, socketPath, reports } = await startGateway({ vendor: 'anthropic', upstream: api.base });
  const body = anthropicRequest().body;
  const reply = await call(socketPath, '/v1/messages?beta=true', {
    headers: {
      'content-type': 'application/json',
      'x-api-key': PLACEHOLDER_KEY,
      authorization: `Bearer ${PLACEHOLDER_KEY}`,
      'api-key': 'sandbox-made-up',
      'proxy-authorization': 'Basic c2FuZGJveDp4',
      'anthropic-version': '2023-06-01',
      'anthropic-beta': 'some-beta',
      connection: 'keep-alive, x-hop',
      'x-hop': 'hop-by-hop by naming',
      'accept-encoding': 'gzip, br',
    },
    body,
  });

  expect(reply.status).toBe(200);
  expect(JSON.parse(reply.body)).toEqual(ANTHROPIC_JSON);
  expect(api.seen).toHaveLength(1);
  const seen = api.seen[0];
  expect(seen.method).toBe('POST');
  expect(seen.url).toBe('/v1/messages?beta=true');
  expect(seen.body).toBe(body);
  expect(seen.headers['x-api-key']).toBe(KEY);
  expect(seen.headers.authorization).toBeUndefined();
  expect(seen.headers['api-key']).toBeUndefined();
  expect(seen.headers['proxy-authorization']).toBeUndefined();
  expect(seen.headers['x-hop']).toBeUndefined();
  expect(seen.headers['anthropic-version']).toBe('2023-06-01');
  expect(seen.headers['anthropic-beta']).toBe('some-beta');
  expect(seen.headers.host).toBe(api.host);
  expect(seen.headers['accept-encoding']).toBe('identity'); // so the gateway can read usage
  expect(JSON.stringify(seen.headers)).not.toContain(PLACEHOLDER_KEY);

  expect(gw.usage()).toEqual({
    requests: 1,
    inputTokens: 20,
    outputTokens: 7,
    costUsd: 0,
    models: ['claude-x-20261101'],
  });
  expect(reports).toEqual([{ method: 'POST', path: '/v1/messages', status: 200, inputTokens: 20, outputTokens: 7 }]);
  expect(JSON.stringify(reports)).not.toContain(KEY);
});

test('openai: bearer key; upstream path prefix + request path; Responses SSE and chat-completion JSON are counted', async () => {
  const api = await fakeApi();
  // trailing slash on purpose: the join trims it
  const { gw, socketPath, reports } = await startGateway({ vendor: 'openai', upstream: `${api.base}/v1/` });
  const headers = {
    'content-type': 'application/json',
    authorization: `Bearer ${PLACEHOLDER_KEY}`,
    'x-api-key': PLACEHOLDER_KEY,
  };

  const streamed = await call(socketPath, '/responses?trace=1', {
    headers,
    body: '{"model":"gpt-x","stream":true,"input":"hi"}',
  });
  expect(streamed.status).toBe(200);
  expect(streamed.headers['content-type']).toBe('text/event-stream; charset=utf-8');
  expect(streamed.body).toBe(OPENAI_SSE.join(''));
  expect(api.seen[0].url).toBe('/v1/responses?trace=1');
  expect(api.seen[0].headers.authorization).toBe(`Bearer ${KEY}`);
  expect(api.seen[0].headers['x-api-key']).toBeUndefined();
  expect(gw.usage()).toMatchObject({ requests: 1, inputTokens: 40, outputTokens: 9 });

  // `..` is resolved before joining: the request stays under the upstream's /v1
  const chat = await call(socketPath, '/../../chat/completions', { headers, body: '{"model":"gpt-x","messages":[]}' });
  expect(chat.status).toBe(200);
  expect(api.seen[1].url).toBe('/v1/chat/completions');
  expect(gw.usage()).toEqual({
    requests: 2,
    inputTokens: 51,
    outputTokens: 13,
    costUsd: 0,
    models: ['gpt-x-2026-11-01'],
  });
  expect(reports).toEqual([
    { method: 'POST', path: '/responses', status: 200, inputTokens: 40, outputTokens: 9 },
    { method: 'POST', path: '/chat/completions', status: 200, inputTokens: 11, outputTokens: 4 },
  ]);
});

test('an Anthropic SSE stream reaches the client event by event, metered live from message_start and message_delta', async () => {
  const api = await fakeApi();
  const { gw, socketPath, reports } = await startGateway({ vendor: 'anthropic', upstream: api.base });
  let first = '';
  let firstBeforeUpstreamEnded: boolean | undefined;
  let usageAtFirstEvent: GatewayUsage | undefined;
  const reply = await call(socketPath, '/v1/messages', {
    ...anthropicRequest(true),
    onFirstChunk: (chunk) => {
      first = chunk;
      firstBeforeUpstreamEnded = !api.streamEnded;
      usageAtFirstEvent = gw.usage();
      api.openGate(); // the upstream holds the rest of the stream until the client has the first event
    },
  });

  expect(firstBeforeUpstreamEnded).toBe(true);
  expect(first).toBe(ANTHROPIC_SSE[0]);
  expect(usageAtFirstEvent).toMatchObject({ inputTokens: 35, outputTokens: 1 });
  expect(reply.status).toBe(200);
  expect(reply.complete).toBe(true);
  expect(reply.headers['content-type']).toBe('text/event-stream');
  expect(reply.body).toBe(ANTHROPIC_SSE.join(''));
  // 15, not 1 + 15: message_delta's output_tokens is cumulative
  expect(gw.usage()).toEqual({
    requests: 1,
    inputTokens: 35,
    outputTokens: 15,
    costUsd: 0,
    models: ['claude-x-20261101'],
  });
  expect(reports).toEqual([{ method: 'POST', path: '/v1/messages', status: 200, inputTokens: 35, outputTokens: 15 }]);
});

test('once the token budget is spent, requests get 429 in Anthropic shape and the upstream hears nothing more', async () => {
  const api = await fakeApi();
  const { gw, socketPath, reports } = await startGateway({ vendor: 'anthropic', upstream: api.base, maxTokens: 40 });
  // 27 tokens each: the second starts under budget (27 < 40) and is let through; it takes usage to 54
  expect((await call(socketPath, '/v1/messages', anthropicRequest())).status).toBe(200);
  expect((await call(socketPath, '/v1/messages', anthropicRequest())).status).toBe(200);
  const refused = await call(socketPath, '/v1/messages', anthropicRequest());
  const again = await call(socketPath, '/v1/messages', anthropicRequest(true));

  const message = 'nightshift: token budget of 40 exhausted (used 54)';
  for (const reply of [refused, again]) {
    expect(reply.status).toBe(429);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.headers['x-should-retry']).toBe('false');
    expect(JSON.parse(reply.body)).toEqual({ type: 'error', error: { type: 'rate_limit_error', message } });
    expect(reply.body).not.toContain(KEY);
  }
  expect(api.seen).toHaveLength(2);
  expect(gw.usage()).toEqual({
    requests: 2,
    inputTokens: 40,
    outputTokens: 14,
    costUsd: 0,
    models: ['claude-x-20261101'],
  });
  expect(reports.map((r) => [r.status, r.refused])).toEqual([
    [200, undefined],
    [200, undefined],
    [429, message],
    [429, message],
  ]);
});

test('usage carried over from earlier execs counts against the budget; OpenAI gets its own error shape', async () => {
  const api = await fakeApi();
  const carried = { requests: 3, inputTokens: 90, outputTokens: 10, costUsd: 0 };
  const { gw, socketPath, reports } = await startGateway(
    { vendor: 'openai', upstream: api.base, maxTokens: 100 },
    carried,
  );
  const reply = await call(socketPath, '/v1/responses', {
    headers: { authorization: `Bearer ${PLACEHOLDER_KEY}` },
    body: '{}',
  });

  expect(reply.status).toBe(429);
  expect(JSON.parse(reply.body)).toEqual({
    error: {
      message: 'nightshift: token budget of 100 exhausted (used 100)',
      type: 'insufficient_quota',
      code: 'nightshift_budget',
    },
  });
  expect(api.seen).toHaveLength(0);
  expect(gw.usage()).toEqual(carried);
  expect(reports).toEqual([
    {
      method: 'POST',
      path: '/v1/responses',
      status: 429,
      inputTokens: 0,
      outputTokens: 0,
      refused: 'nightshift: token budget of 100 exhausted (used 100)',
    },
  ]);
});

test('the cost budget is priced per million tokens and refuses once reached', async () => {
  const api = await fakeApi();
  const { gw, socketPath } = await startGateway({
    vendor: 'anthropic',
    upstream: api.base,
    maxCostUsd: 0.0001,
    prices: { inputPerMTok: 3, outputPerMTok: 15 },
  });
  expect((await call(socketPath, '/v1/messages', anthropicRequest())).status).toBe(200);
  // 20 in × $3/M + 7 out × $15/M = $0.000165
  expect(gw.usage().costUsd).toBeCloseTo(0.000165, 12);

  const refused = await call(socketPath, '/v1/messages', anthropicRequest());
  expect(refused.status).toBe(429);
  expect(JSON.parse(refused.body).error).toEqual({
    type: 'rate_limit_error',
    message: 'nightshift: cost budget of $0.0001 exhausted (used $0.000165)',
  });
  expect(api.seen).toHaveLength(1);
});

test("two runs' gateways under one token's budget, hit at once, overspend it by at most one request; the ledger books what they metered", async () => {
  const api = await fakeApi();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-ledger-'));
  cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  const limits = [{ scope: 'token alice', limit: parseBudget('0.0003usd/day') as BudgetLimit }];
  const prices = { inputPerMTok: 3, outputPerMTok: 15 };
  // Two runs, each with no budget of its own (a per-run count would let each spend the $0.0003).
  const runs = await Promise.all(
    ['acme', 'billing'].map((repo) =>
      startGateway({
        vendor: 'anthropic',
        upstream: api.base,
        prices,
        shared: sharedBudget(home, { token: 'alice', repo }, limits, 'claude-x'),
      }),
    ),
  );
  const answers = await Promise.all(
    runs.flatMap(({ socketPath }) => [1, 2, 3, 4].map(() => call(socketPath, '/v1/messages', anthropicRequest()))),
  );
  // $0.000165 a request: the first alone (its size unknown), the second fits, the rest are refused.
  expect(api.seen).toHaveLength(2);
  expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 429, 429, 429, 429, 429, 429]);
  const refusal = JSON.parse(answers.find((a) => a.status === 429)!.body).error.message;
  expect(refusal).toMatch(/^nightshift: token alice's budget of \$0\.0003 a day \(used \$0\.000330\) is spent until /);
  const metered = runs.reduce((sum, { gw }) => sum + gw.usage().costUsd, 0);
  expect(metered).toBeCloseTo(0.00033, 12);
  const rows = readSpendRows(home);
  expect(rows.map((r) => [r.token, r.model])).toEqual(rows.map(() => ['alice', 'claude-x-20261101']));
  expect(rows.reduce((sum, r) => sum + r.costUsd, 0)).toBeCloseTo(metered, 12);
});

test('an upstream naming a new model in every response grows the ledger by no more than ten models', async () => {
  let n = 0;
  const upstream = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ model: `m-${n++}`, usage: { input_tokens: 1, output_tokens: 1 } }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => upstream.close(() => r())));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-ledger-'));
  cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  const { socketPath } = await startGateway({
    vendor: 'anthropic',
    upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    shared: sharedBudget(home, { token: 'alice', repo: 'acme' }, [], 'claude-x'),
  });
  for (let i = 0; i < 15; i++) expect((await call(socketPath, '/v1/messages', anthropicRequest())).status).toBe(200);
  const rows = readSpendRows(home);
  expect(rows.map((r) => r.model).sort()).toEqual(
    ['claude-x', ...Array.from({ length: 10 }, (_, i) => `m-${i}`)].sort(),
  );
  expect(rows.find((r) => r.model === 'claude-x')!.requests).toBe(5);
});

test('an unreachable upstream gives 502 in the vendor shape, without the key', async () => {
  const upstream = `http://127.0.0.1:${await closedPort()}`;
  const anthropic = await startGateway({ vendor: 'anthropic', upstream });
  const openai = await startGateway({ vendor: 'openai', upstream });

  const a = await call(anthropic.socketPath, '/v1/messages', anthropicRequest());
  expect(a.status).toBe(502);
  const aBody = JSON.parse(a.body);
  expect(aBody.type).toBe('error');
  expect(aBody.error.type).toBe('api_error');
  expect(aBody.error.message).toMatch(/^nightshift: model API 127\.0\.0\.1:\d+ unreachable \(ECONNREFUSED\)$/);

  const o = await call(openai.socketPath, '/v1/responses', {
    headers: { authorization: `Bearer ${PLACEHOLDER_KEY}` },
    body: '{}',
  });
  expect(o.status).toBe(502);
  const oBody = JSON.parse(o.body);
  expect(oBody.error).toMatchObject({ type: 'server_error', code: 'nightshift_upstream' });
  expect(oBody.error.message).toContain('unreachable (ECONNREFUSED)');

  for (const text of [a.body, o.body, JSON.stringify(anthropic.reports), JSON.stringify(openai.reports)])
    expect(text).not.toContain(KEY);
  expect(anthropic.reports).toEqual([
    { method: 'POST', path: '/v1/messages', status: 502, inputTokens: 0, outputTokens: 0, error: aBody.error.message },
  ]);
});

test('configuration errors do not echo the key', () => {
  const attempts: Array<Partial<GatewayOptions>> = [
    { upstream: 'ftp://example.com' },
    { upstream: `not a url ${KEY}` },
    { maxCostUsd: 1 },
  ];
  for (const attempt of attempts) {
    let message = '';
    try {
      new ModelGateway({ vendor: 'anthropic', upstream: 'https://api.anthropic.com', apiKey: KEY, ...attempt });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^model gateway: /);
    expect(message).not.toContain(KEY);
  }
  let bad = '';
  try {
    new ModelGateway({ vendor: 'openai', upstream: 'https://api.openai.com', apiKey: `${KEY}\r\nx-injected: 1` });
  } catch (err) {
    bad = (err as Error).message;
  }
  expect(bad).toContain('API key');
  expect(bad).not.toContain(KEY);
});

test('close() resolves promptly with an idle keep-alive client, a stalled stream and a stalled upload, and removes the socket', async () => {
  const api = await fakeApi();
  const { gw, socketPath } = await startGateway({ vendor: 'anthropic', upstream: api.base });
  const agent = new http.Agent({ keepAlive: true });
  cleanups.push(() => agent.destroy());
  let idleSocketClosed = false;
  agent.on('free', (socket) => socket.once('close', () => (idleSocketClosed = true)));
  expect((await call(socketPath, '/v1/messages', { ...anthropicRequest(), agent })).status).toBe(200);

  let gotFirstEvent: () => void = () => undefined;
  const firstEvent = new Promise<void>((resolve) => (gotFirstEvent = resolve));
  const stalled = call(socketPath, '/v1/stall', { ...anthropicRequest(true), onFirstChunk: () => gotFirstEvent() });
  await within(2000, 'first event of the stalled stream', firstEvent);

  // A client that promised 1000 bytes of body and sent 10: its connection is neither idle nor tied to the upstream.
  const upload = http.request({
    socketPath,
    path: '/v1/messages',
    method: 'POST',
    headers: { 'content-length': '1000' },
    agent: false,
  });
  const uploadCut = new Promise<void>((resolve) => {
    upload.on('error', () => resolve());
    upload.on('close', () => resolve());
  });
  upload.write('{"model":"');
  // And one that has sent half its request headers.
  const halfHeaders = net.connect(socketPath, () =>
    halfHeaders.write('POST /v1/messages HTTP/1.1\r\nhost: gateway\r\n'),
  );
  const halfHeadersCut = new Promise<void>((resolve) => {
    halfHeaders.on('error', () => resolve());
    halfHeaders.on('close', () => resolve());
  });
  await within(
    2000,
    'the stalled upload being forwarded',
    (async () => {
      while (gw.usage().requests < 3) await sleep(10);
    })(),
  );

  const started = Date.now();
  await within(2000, 'close()', gw.close());
  expect(Date.now() - started).toBeLessThan(1000);
  const cut = await within(1000, 'the stalled stream ending', stalled);
  expect(cut.complete).toBe(false);
  expect(cut.body).toBe(ANTHROPIC_SSE[0]);
  await within(1000, 'the stalled upload ending', uploadCut);
  await within(1000, 'the half-sent headers connection ending', halfHeadersCut);
  await sleep(50);
  expect(idleSocketClosed).toBe(true);
  expect(fs.existsSync(socketPath)).toBe(false);
});

test('listen() replaces a stale socket file and opens the socket to other users', async () => {
  const api = await fakeApi();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'gateway.sock');
  // A process that exits without closing its server leaves its socket file behind, as a crashed worker would.
  const left = spawnSync(process.execPath, [
    '-e',
    "require('net').createServer().listen(process.argv[1], () => process.exit(0))",
    socketPath,
  ]);
  expect(left.status).toBe(0);
  expect(fs.lstatSync(socketPath).isSocket()).toBe(true);

  const gw = new ModelGateway({ vendor: 'anthropic', upstream: api.base, adminListed: true, apiKey: KEY });
  await gw.listen(socketPath);
  cleanups.push(() => gw.close());
  expect(fs.statSync(socketPath).mode & 0o777).toBe(0o666);
  expect((await call(socketPath, '/v1/messages', anthropicRequest())).status).toBe(200);
  expect(api.seen).toHaveLength(1);
});
