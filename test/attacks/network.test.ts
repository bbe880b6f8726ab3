import { ApplicationFailure } from '@temporalio/common';
import { execFileSync } from 'node:child_process';
import { promises as dns } from 'node:dns';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { ActivityDeps } from '../../runtime/deps';
import { loadConfig } from '../../config';
import { startModelGateway } from '../../gateway/runGateway';
import { EgressPolicy, EgressProxy, type EgressDecision } from '../../sandbox/egress';
import { modelSocketPath } from '../../sandbox/layout';
import { ModelGateway, PLACEHOLDER_KEY } from '../../gateway/proxy';
import { internalAddress, normalizeBaseUrl, normalizeHost } from '../../spec/network';
import { freePort } from '../helpers/ports';
import { spec, VALUE_REPO } from '../helpers/specs';
import { makeRepo, startTestStack, tempDir, type TestStack } from '../helpers/stack';

// Issue 11, network boundaries: credentials go only where the admin said, and no sandbox reaches the control plane.
// A spec author holds a submitter token; every case checks that a loopback listener standing in for the control plane
// (Temporal Web's HTTP API, the model key's thief) heard nothing, or that another run is still awaiting approval.

const KEY = `sk-ant-net-${process.pid}-stays-in-the-worker`;

/** A server on every local address (IPv4 and IPv6, loopback and the machine's own), recording whatever reaches it. */
interface Listener {
  port: number;
  heard: string[];
  close(): void;
}

async function listener(onRequest?: (req: http.IncomingMessage) => void): Promise<Listener> {
  const heard: string[] = [];
  const server = http.createServer((req, res) => {
    heard.push(`${req.method} ${req.url} key=${req.headers['x-api-key'] ?? req.headers.authorization ?? ''}`);
    onRequest?.(req);
    res.end('control plane reached\n');
  });
  server.on('connection', () => heard.push('connection'));
  await new Promise<void>((r) => server.listen(0, '::', () => r()));
  return { port: (server.address() as net.AddressInfo).port, heard, close: () => server.close() };
}

/** An IPv4 address of this machine that is not loopback: what "the server's own addresses" means here. */
function ownAddress(): string {
  const all = Object.values(os.networkInterfaces()).flat();
  const a = all.find((i) => i && i.family === 'IPv4' && !i.internal);
  if (!a) throw new Error('this machine has no non-loopback IPv4 address to test with');
  return a.address;
}

/** Speak to an egress proxy's unix socket as the sandbox's bridge does; the status code of its answer. */
function proxyAsk(socketPath: string, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath, () => s.write(request));
    let data = '';
    s.on('data', (c) => {
      data += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m && data.includes('\r\n\r\n')) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
  });
}
const connect = (target: string) => `CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`;
const absolute = (target: string) =>
  `POST http://${target}/api/v1/namespaces/default/workflows/x/signal/approve HTTP/1.1\r\nhost: ${target}\r\ncontent-length: 0\r\n\r\n`;

/** A real EgressProxy for one policy on a unix socket, with its decisions. */
async function startProxy(
  policy: EgressPolicy,
): Promise<{ socket: string; decisions: EgressDecision[]; close: () => Promise<void> }> {
  const socket = path.join(tempDir('egress'), 'proxy.sock');
  const decisions: EgressDecision[] = [];
  const proxy = new EgressProxy(policy, (d) => decisions.push(d));
  await proxy.listen(socket);
  return { socket, decisions, close: () => proxy.close() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the internal-address classifier', () => {
  // Every way to write the loopback address, and the other ranges the threat model names.
  const internal = [
    '127.0.0.1',
    '0x7f.1',
    '2130706433',
    '0177.0.0.1',
    '127.1',
    '0x7f.0.0.1',
    '[::1]',
    '::1',
    '[::ffff:127.0.0.1]',
    '::ffff:7f00:1',
    '[::7f00:1]',
    '[64:ff9b::127.0.0.1]',
    '[2002:7f00:1::]',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '[fd00::1]',
    '100.64.0.1',
    '169.254.169.254',
    '[fe80::1]',
    '224.0.0.1',
    '[ff02::1]',
    '0.0.0.0',
    '0',
    '[::]',
    '255.255.255.255',
    '[::ffff:169.254.169.254]',
  ];
  test.each(internal)('%s is internal in every spelling', (host) => {
    const h = normalizeHost(host);
    expect(h).toBeDefined();
    expect(internalAddress(h!)).toMatch(/internal address/);
  });

  test("the server's own addresses are internal; the registry's documentation range and public addresses are not", () => {
    expect(internalAddress(ownAddress())).toBe(`this server's own address ${ownAddress()}`);
    for (const a of [
      '203.0.113.80',
      '198.51.100.7',
      '8.8.8.8',
      '2606:4700::1',
      '::ffff:203.0.113.80',
      '64:ff9b::808:808',
    ])
      expect(internalAddress(a)).toBeUndefined();
  });
});

test('the admin’s lists are checked at start: an upstream with userinfo (not echoed) or an opening without an exact port stops the server with one line', () => {
  expect(() =>
    loadConfig({ NIGHTSHIFT_MODEL_UPSTREAMS: 'https://gw.example/v1, http://user:s3cret@10.0.0.5/v1' }),
  ).toThrow(/^NIGHTSHIFT_MODEL_UPSTREAMS entry 2 has user:password@ \(userinfo\)$/);
  expect(() => loadConfig({ NIGHTSHIFT_MODEL_UPSTREAMS: 'http://user:s3cret@10.0.0.5/v1' })).not.toThrow(/s3cret/);
  for (const bad of ['127.0.0.1', '*.internal:5432'])
    expect(() => loadConfig({ NIGHTSHIFT_EGRESS_INTERNAL: bad })).toThrow(
      /^NIGHTSHIFT_EGRESS_INTERNAL: .* must be an exact host:port$/,
    );
  expect(
    loadConfig({
      NIGHTSHIFT_MODEL_UPSTREAMS: 'HTTP://GW.example:80/v1/',
      NIGHTSHIFT_EGRESS_INTERNAL: 'db.internal:5432',
    }),
  ).toMatchObject({ modelUpstreams: ['http://gw.example:80/v1'], egressInternal: ['db.internal:5432'] });
});

describe('at submit: only the admin opens an internal host:port or names a model upstream', () => {
  let stack: TestStack;
  let repo: string;
  let submitter: string;
  let target: Listener;
  let opened: number;
  let model: Listener;

  beforeAll(async () => {
    target = await listener();
    model = await listener();
    opened = await freePort();
    stack = await startTestStack({
      worker: false,
      env: {
        NIGHTSHIFT_EGRESS_INTERNAL: `127.0.0.1:${opened}`,
        NIGHTSHIFT_MODEL_UPSTREAMS: `http://127.0.0.1:${model.port}/v1`,
      },
    });
    repo = makeRepo(VALUE_REPO);
    submitter = stack.tokens.create('mallory', 'submitter');
  });
  afterAll(async () => {
    target?.close();
    model?.close();
    await stack?.stop();
  });

  const runCount = async () =>
    (await stack.client.workflow.count(`WorkflowType = 'specRun' AND TaskQueue = '${stack.config.taskQueue}'`)).count;
  const submit = (extra: Record<string, unknown>) =>
    stack.api('POST', '/v1/runs', { body: spec(repo, 'echo 2 > src/value.txt', extra), token: submitter });

  /** 400 with a one-line message naming `field`, and no run started. */
  async function refused(extra: Record<string, unknown>, field: string): Promise<string> {
    const before = await runCount();
    const res = await submit(extra);
    expect(res.status).toBe(400);
    expect(res.body.error.message.split('\n')).toHaveLength(1);
    expect(res.body.error.message).toContain(field);
    expect(await runCount()).toBe(before);
    return res.body.error.message;
  }

  const spellings = (p: () => number) =>
    [
      ['127.0.0.1', () => `127.0.0.1:${p()}`],
      ['octal', () => `0177.0.0.1:${p()}`],
      ['decimal', () => `2130706433:${p()}`],
      ['hex', () => `0x7f.1:${p()}`],
      ['short', () => `127.1:${p()}`],
      ['localhost', () => `localhost:${p()}`],
      ['LOCALHOST. (case, trailing dot)', () => `LOCALHOST.:${p()}`],
      ['a name under .localhost', () => `temporal.localhost:${p()}`],
      ['a wildcard under .localhost', () => `*.localhost:${p()}`],
      ["the server's own address", () => `${ownAddress()}:${p()}`],
      ['cloud metadata', () => '169.254.169.254'],
      ['a private address', () => `10.0.0.1:${p()}`],
      ['an IPv6 literal', () => `[::1]:${p()}`],
    ] as const;

  const mapped = (p: () => number) =>
    [
      ['an IPv4-mapped IPv6 literal', () => `[::ffff:127.0.0.1]:${p()}`],
      ['an IPv4-mapped IPv6 literal in hex', () => `[::ffff:7f00:1]:${p()}`],
    ] as const;

  test.each([...spellings(() => target.port), ...mapped(() => target.port)])(
    'spec lists %s in sandbox.network → 400 naming sandbox.network; nothing starts, the listener heard nothing',
    async (_name, entry) => {
      await refused({ sandbox: { network: ['registry.npmjs.org', entry()] } }, 'sandbox.network.1');
      expect(target.heard).toEqual([]);
    },
  );

  test.each([...spellings(() => target.port), ...mapped(() => target.port)])(
    "spec lists %s in setup.network (the setup stage's egress) → 400 naming setup.network; nothing starts",
    async (_name, entry) => {
      await refused({ setup: { run: ['true'], network: ['registry.npmjs.org', entry()] } }, 'setup.network.1');
      expect(target.heard).toEqual([]);
    },
  );

  test('an internal host:port the admin opened (NIGHTSHIFT_EGRESS_INTERNAL) is accepted in any spelling; its neighbour port is not', async () => {
    for (const entry of [`127.0.0.1:${opened}`, `0x7f.1:${opened}`]) {
      const res = await submit({ sandbox: { network: [entry] } });
      expect(res.status).toBe(202);
      await stack.client.workflow.getHandle(res.body.id).terminate('test done');
    }
    await refused({ sandbox: { network: [`127.0.0.1:${opened + 1}`] } }, 'sandbox.network.0');
    // A port-less entry means 80 and 443: not opened.
    await refused({ sandbox: { network: ['127.0.0.1'] } }, 'sandbox.network.0');
  });

  test('agent.baseUrl at a loopback listener (the model key’s thief, Temporal Web) → 400 naming agent.baseUrl; the listener heard nothing', async () => {
    const message = await refused(
      { agent: { kind: 'claude-code', baseUrl: `http://127.0.0.1:${target.port}` } },
      'agent.baseUrl',
    );
    expect(message).toMatch(/NIGHTSHIFT_MODEL_UPSTREAMS/);
    await refused(
      {
        agent: { kind: 'command', api: 'anthropic', baseUrl: `http://localhost:${target.port}/v1`, command: ['true'] },
      },
      'agent.baseUrl',
    );
    expect(target.heard).toEqual([]);
  });

  const tricks: [string, () => string][] = [
    ['userinfo: https://api.anthropic.com@127.0.0.1:P', () => `https://api.anthropic.com@127.0.0.1:${target.port}/v1`],
    ['a listed prefix climbed: /v1/../admin', () => `http://127.0.0.1:${model.port}/v1/../admin`],
    ['an encoded climb: /v1/%2e%2e/admin', () => `http://127.0.0.1:${model.port}/v1/%2e%2e/admin`],
    ['a longer path: /v1evil', () => `http://127.0.0.1:${model.port}/v1evil`],
    ['a deeper path: /v1/admin', () => `http://127.0.0.1:${model.port}/v1/admin`],
    ['uppercase path: /V1', () => `http://127.0.0.1:${model.port}/V1`],
    ['a trailing-dot host', () => 'https://api.openai.com./v1'],
    ['a query', () => `http://127.0.0.1:${model.port}/v1?host=127.0.0.1:${target.port}`],
    ['a fragment', () => `http://127.0.0.1:${model.port}/v1#x`],
    ['another port', () => `http://127.0.0.1:${target.port}/v1`],
    ['https instead of http', () => `https://127.0.0.1:${model.port}/v1`],
    ["another vendor's default", () => 'https://api.anthropic.com'],
  ];
  test.each(tricks)('codex with agent.baseUrl %s → 400 naming agent.baseUrl', async (_name, url) => {
    await refused({ agent: { kind: 'codex', baseUrl: url() } }, 'agent.baseUrl');
    expect(target.heard).toEqual([]);
    expect(model.heard).toEqual([]);
  });

  test('the listed upstream and the vendor default are accepted, in their normalized spellings', async () => {
    for (const baseUrl of [
      `http://127.0.0.1:${model.port}/v1`,
      `HTTP://127.0.0.1:${model.port}/v1/`,
      'https://api.openai.com/v1',
      'https://API.OPENAI.COM:443/v1//',
    ]) {
      const res = await submit({ agent: { kind: 'codex', baseUrl } });
      expect(res.status).toBe(202);
      await stack.client.workflow.getHandle(res.body.id).terminate('test done');
    }
  });

  test('a schedule cannot carry what a submit cannot: baseUrl and sandbox.network are checked when it is created', async () => {
    for (const [extra, field] of [
      [{ agent: { kind: 'claude-code', baseUrl: `http://127.0.0.1:${target.port}` } }, 'agent.baseUrl'],
      [{ sandbox: { network: [`2130706433:${target.port}`] } }, 'sandbox.network.0'],
    ] as const) {
      const id = `net-${process.pid}-${field}`.replace(/\./g, '-').toLowerCase();
      const res = await stack.api('POST', '/v1/schedules', {
        body: { id, cron: '* * * * *', spec: spec(repo, 'true', extra) },
        token: submitter,
      });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toContain(field);
      await expect(stack.client.schedule.getHandle(id).describe()).rejects.toThrow();
    }
    expect(target.heard).toEqual([]);
  });
});

describe('the egress proxy refuses the control plane after resolving, whatever the spec lists', () => {
  let target: Listener;
  beforeAll(async () => {
    target = await listener();
  });
  afterAll(() => target.close());

  // Built directly, as if a spec had bypassed submit (Temporal directly, an old schedule).
  const listed = (p: number) => [
    `localhost:${p}`,
    `127.0.0.1:${p}`,
    `2130706433:${p}`,
    `0x7f.1:${p}`,
    `0177.0.0.1:${p}`,
    `127.1:${p}`,
    `${ownAddress()}:${p}`,
  ];
  const targets = (p: number) => [
    `localhost:${p}`,
    `LOCALHOST.:${p}`,
    `127.0.0.1:${p}`,
    `[::ffff:127.0.0.1]:${p}`,
    `[::1]:${p}`,
    `2130706433:${p}`,
    `0x7f.1:${p}`,
    `0177.0.0.1:${p}`,
    `127.1:${p}`,
    `${ownAddress()}:${p}`,
    `[::]:${p}`,
    `0.0.0.0:${p}`,
    `[::ffff:7f00:1]:${p}`,
    `[0:0:0:0:0:ffff:127.0.0.1]:${p}`,
  ];

  test('CONNECT and absolute-URI requests to every spelling of loopback and the own address → 403; the listener heard nothing; each decision says why', async () => {
    const proxy = await startProxy(new EgressPolicy(listed(target.port)));
    try {
      for (const t of targets(target.port)) {
        expect([t, await proxyAsk(proxy.socket, connect(t))]).toEqual([t, 403]);
        expect([t, await proxyAsk(proxy.socket, absolute(t))]).toEqual([t, 403]);
      }
      await sleep(200);
      expect(target.heard).toEqual([]);
      expect(proxy.decisions.every((d) => !d.allowed)).toBe(true);
      const localhost = proxy.decisions.find((d) => d.method === 'CONNECT' && d.target === `localhost:${target.port}`)!;
      expect(localhost.reason).toMatch(
        /^localhost resolves to internal address (127\.0\.0\.1|::1), which the server's admin has not opened/,
      );
      expect(proxy.decisions.find((d) => d.target === `2130706433:${target.port}`)!.reason).toMatch(
        /^127\.0\.0\.1 is internal address 127\.0\.0\.1/,
      );
      expect(proxy.decisions.find((d) => d.target === `${ownAddress()}:${target.port}`)!.reason).toContain(
        `this server's own address ${ownAddress()}`,
      );
    } finally {
      await proxy.close();
    }
  });

  test('DNS rebinding: an allowlisted name answered with loopback, private, link-local, IPv4-mapped or NAT64 addresses, or a public one beside them → 403 after resolving, asked once; the listener heard nothing', async () => {
    // What a rebinding DNS server answers for names the spec allows; the proxy and its policy are the real ones.
    const answers: Record<string, string[]> = {
      'loopback.rebind.test': ['127.0.0.1'],
      'private.rebind.test': ['10.0.0.5'],
      'metadata.rebind.test': ['169.254.169.254'],
      'link-local6.rebind.test': ['fe80::1'],
      'mapped.rebind.test': ['::ffff:127.0.0.1'],
      'mapped-hex.rebind.test': ['::ffff:7f00:1'],
      'nat64.rebind.test': ['64:ff9b::7f00:1'],
      'mixed.rebind.test': ['203.0.113.80', '127.0.0.1'],
    };
    const asked: string[] = [];
    const resolver = async (host: string) => {
      asked.push(host);
      return answers[host] ?? [];
    };
    const proxy = await startProxy(
      new EgressPolicy(
        Object.keys(answers).map((h) => `${h}:${target.port}`),
        [],
        resolver,
      ),
    );
    try {
      for (const name of Object.keys(answers)) {
        expect([name, await proxyAsk(proxy.socket, connect(`${name}:${target.port}`))]).toEqual([name, 403]);
        expect([name, await proxyAsk(proxy.socket, absolute(`${name}:${target.port}`))]).toEqual([name, 403]);
      }
      await sleep(200);
      expect(target.heard).toEqual([]);
      expect(asked).toEqual(Object.keys(answers).flatMap((n) => [n, n]));
      for (const d of proxy.decisions)
        expect(d).toMatchObject({
          allowed: false,
          reason: expect.stringMatching(
            /^[a-z0-9.-]+\.rebind\.test resolves to internal address .*, which the server's admin has not opened/,
          ),
        });
    } finally {
      await proxy.close();
    }
    // A name whose second answer would be loopback is connected to at its first, checked answer: asked once per
    // request.
    let calls = 0;
    const flipping = new EgressPolicy([`flip.rebind.test:${target.port}`], [], async () =>
      ++calls === 1 ? ['203.0.113.80'] : ['127.0.0.1'],
    );
    expect(await flipping.resolve('flip.rebind.test', target.port)).toEqual({ address: '203.0.113.80', reason: 'ok' });
    expect(calls).toBe(1);
  });

  test('a wildcard or an allowed name is no way around it: the spec cannot open what resolves internal', async () => {
    const proxy = await startProxy(new EgressPolicy([`*.localhost:${target.port}`, `localhost:${target.port}`]));
    try {
      expect(await proxyAsk(proxy.socket, connect(`api.localhost:${target.port}`))).toBe(403);
      expect(await proxyAsk(proxy.socket, absolute(`localhost:${target.port}`))).toBe(403);
      expect(target.heard).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  test('the admin’s opening (exact host:port) lets the listed spelling through, and nothing else', async () => {
    const proxy = await startProxy(new EgressPolicy(listed(target.port), [`127.0.0.1:${target.port}`]));
    try {
      expect(await proxyAsk(proxy.socket, connect(`127.0.0.1:${target.port}`))).toBe(200);
      expect(await proxyAsk(proxy.socket, absolute(`0x7f.1:${target.port}`))).toBe(200);
      // Another internal host:port on the same listener, listed by the spec but not opened.
      expect(await proxyAsk(proxy.socket, connect(`${ownAddress()}:${target.port}`))).toBe(403);
      await sleep(100);
      expect(target.heard.filter((h) => h !== 'connection')).toHaveLength(1);
      expect(target.heard).toContain('connection');
    } finally {
      await proxy.close();
    }
  });

  test('the npm registry (in 203.0.113.0/24 on this machine) stays reachable through the proxy: CONNECT + TLS + GET /-/ping', async () => {
    const registry = new URL(execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim());
    const cafile = execFileSync('npm', ['config', 'get', 'cafile'], { encoding: 'utf8' }).trim();
    const ca = cafile && cafile !== 'null' && cafile !== 'undefined' ? readFileSync(cafile) : undefined;
    const port = Number(registry.port || 443);
    const proxy = await startProxy(new EgressPolicy([registry.hostname]));
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const raw = net.connect(proxy.socket, () => raw.write(connect(`${registry.hostname}:${port}`)));
        raw.once('data', (head) => {
          if (!/^HTTP\/1\.1 200/.test(head.toString()))
            return reject(new Error(`proxy said ${head.toString().split('\r\n')[0]}`));
          const secure = tls.connect({ socket: raw, servername: registry.hostname, ...(ca ? { ca } : {}) }, () => {
            secure.write(
              `GET ${registry.pathname.replace(/\/?$/, '/')}-/ping HTTP/1.1\r\nhost: ${registry.host}\r\nconnection: close\r\n\r\n`,
            );
          });
          let body = '';
          secure.on('data', (c) => (body += c));
          secure.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(body)?.[1] ?? 0)));
          secure.on('error', reject);
        });
        raw.on('error', reject);
      });
      expect(status).toBe(200);
      expect(proxy.decisions).toEqual([
        expect.objectContaining({ allowed: true, target: `${registry.hostname}:${port}` }),
      ]);
    } finally {
      await proxy.close();
    }
  });
});

describe('the model gateway sends the key only where the admin said', () => {
  let thief: Listener;
  beforeAll(async () => {
    thief = await listener();
  });
  afterAll(() => thief.close());

  // The home holds the spend ledger the gateway books each request in.
  const deps = (modelUpstreams: string[]) =>
    ({
      home: tempDir('gw-home'),
      modelPrices: {},
      modelUpstreams,
      self: { worker: 'net-test', queue: 'q' },
    }) as unknown as ActivityDeps;
  const input = (baseUrl: string, root: string) => ({
    agent: { kind: 'claude-code' as const, baseUrl },
    limits: {},
    root,
    apiKey: KEY,
  });

  /** A request through the gateway's socket, as the agent in the sandbox makes it. */
  const call = (socketPath: string, requestPath: string) =>
    new Promise<{ status: number; body: string; location?: string }>((resolve, reject) => {
      const req = http.request(
        {
          socketPath,
          path: requestPath,
          method: 'POST',
          headers: { 'x-api-key': PLACEHOLDER_KEY, 'content-type': 'application/json' },
        },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body, location: res.headers.location }));
        },
      );
      req.on('error', reject);
      req.end('{}');
    });

  async function gateway(upstream: string, adminListed: boolean) {
    const root = tempDir('gw');
    require('node:fs').mkdirSync(path.join(root, 'net'));
    const gw = new ModelGateway({ vendor: 'anthropic', upstream, adminListed, apiKey: KEY });
    await gw.listen(modelSocketPath(root));
    return { socket: modelSocketPath(root), close: () => gw.close() };
  }

  test('the worker re-checks agent.baseUrl (a run that bypassed submit): startModelGateway refuses, non-retryable, naming agent.baseUrl; the listener heard nothing', async () => {
    const root = tempDir('gw');
    const err = await startModelGateway(
      deps([]),
      { ...input(`http://127.0.0.1:${thief.port}`, root) },
      () => undefined,
    ).catch((e) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toMatch(/^agent\.baseUrl: not an allowed model API/);
    const userinfo = await startModelGateway(
      deps([normalizeBaseUrl(`http://127.0.0.1:${thief.port}`)]),
      input(`https://api.anthropic.com@127.0.0.1:${thief.port}`, root),
      () => undefined,
    ).catch((e) => e);
    expect(userinfo.message).toMatch(/^agent\.baseUrl: has user:password@/);
    expect(thief.heard).toEqual([]);
  });

  test('when the admin lists the upstream, the same gateway reaches it with the key (the refusal above is the list, not the listener)', async () => {
    const root = tempDir('gw');
    require('node:fs').mkdirSync(path.join(root, 'net'));
    const running = (await startModelGateway(
      deps([normalizeBaseUrl(`http://127.0.0.1:${thief.port}`)]),
      input(`http://127.0.0.1:${thief.port}/`, root),
      () => undefined,
    ))!;
    try {
      expect((await call(modelSocketPath(root), '/v1/messages')).status).toBe(200);
      expect(thief.heard).toContain(`POST /v1/messages key=${KEY}`);
    } finally {
      await running.gateway.close();
      thief.heard.length = 0;
    }
  });

  test('a vendor default that resolves to an internal address is refused after DNS (lookup hook), and so is an internal literal; the listener heard nothing', async () => {
    for (const upstream of [
      `http://localhost:${thief.port}`,
      `http://127.0.0.1:${thief.port}`,
      `http://[::ffff:127.0.0.1]:${thief.port}`,
    ]) {
      const gw = await gateway(upstream, false);
      try {
        const res = await call(gw.socket, '/v1/messages');
        expect(res.status).toBe(502);
        expect(res.body).toMatch(/internal address/);
        expect(res.body).not.toContain(KEY);
      } finally {
        await gw.close();
      }
    }
    await sleep(100);
    expect(thief.heard).toEqual([]);
  });

  test('an upstream answering 302 to a loopback listener: the gateway does not follow; the listener heard nothing', async () => {
    const redirector = http.createServer((_req, res) =>
      res.writeHead(302, { location: `http://127.0.0.1:${thief.port}/steal` }).end(),
    );
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', () => r()));
    const gw = await gateway(`http://127.0.0.1:${(redirector.address() as net.AddressInfo).port}`, true);
    try {
      const res = await call(gw.socket, '/v1/messages');
      expect(res.status).toBe(302);
      await sleep(300);
      expect(thief.heard).toEqual([]);
    } finally {
      await gw.close();
      redirector.close();
    }
  });

  test('path climbing (/../, %2e%2e/, .%2E/, backslashes) stays under the upstream’s base path; encoded slashes are refused', async () => {
    const paths: string[] = [];
    const upstream = http.createServer((req, res) => {
      paths.push(req.url!);
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const gw = await gateway(`http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}/v1`, true);
    try {
      for (const p of [
        '/../admin',
        '/%2e%2e/admin',
        '/%2E%2E/%2e%2e/admin',
        '/.%2E/admin',
        '/responses/../../../admin',
        '/..\\..\\admin',
      ])
        expect([p, (await call(gw.socket, p)).status]).toEqual([p, 200]);
      for (const p of ['/..%2fadmin', '/..%5Cadmin']) expect([p, (await call(gw.socket, p)).status]).toEqual([p, 400]);
      expect(paths).toHaveLength(6);
      for (const p of paths) {
        expect(p.startsWith('/v1/')).toBe(true);
        expect(decodeURIComponent(p).split(/[/\\]/)).not.toContain('..');
      }
    } finally {
      await gw.close();
      upstream.close();
    }
  });
});

describe('end to end, both drivers: a run’s agent cannot approve another run', () => {
  let stack: TestStack;
  let approver: Listener;
  let runA: string;

  beforeAll(async () => {
    // Stands in for Temporal Web's HTTP API: anything that reaches it approves run A.
    approver = await listener(
      () => void stack.api('POST', `/v1/runs/${runA}/approve`, { body: { comment: 'approved from a sandbox' } }),
    );
    stack = await startTestStack();
  });
  afterAll(async () => {
    approver?.close();
    await stack?.stop();
  });

  test('run B (bwrap and docker) tries the Temporal frontend, the API, a loopback listener and the own address, directly and through the proxy → run A still awaits approval with no decisions; the listener heard nothing', async () => {
    const submitter = stack.tokens.create('mallory', 'submitter');
    const repo = makeRepo(VALUE_REPO);
    runA = await stack.submit(spec(repo, 'echo 2 > src/value.txt'));
    await stack.waitFor(runA, ['awaiting_approval'], 120_000);

    const temporal = Number(process.env.NIGHTSHIFT_TEST_TEMPORAL!.split(':').pop());
    const api = Number(new URL(stack.apiUrl).port);
    const ports = [temporal, api, approver.port];
    const hosts = ['127.0.0.1', 'localhost', '2130706433', '0x7f.1', '[::1]', '[::ffff:127.0.0.1]', ownAddress()];
    const approve = `/api/v1/namespaces/default/workflows/${runA}/signal/approve`;
    // Spelled apart in the script, so the log's echo of the command does not contain it.
    const reached = `echo REA''CHED`;
    const attempts = ports.flatMap((p) =>
      hosts.flatMap((h) => [
        `curl -s -m 3 --noproxy '*' -X POST http://${h}:${p}${approve} -d '{}' && ${reached}`,
        `curl -s -m 5 --noproxy '' -x "$HTTP_PROXY" -X POST http://${h}:${p}${approve} -d '{}' -o /dev/null -w "proxy %{http_code}\\n"`,
        `curl -s -m 5 --noproxy '' -p -x "$HTTP_PROXY" -X POST http://${h}:${p}${approve} -d '{}' && ${reached}`,
      ]),
    );
    const raw = `node -e "for (const p of [${ports.join(',')}]) require('net').connect(p, '127.0.0.1').on('connect', () => console.log('REA' + 'CHED')).on('error', () => {})"`;
    const agent = [...attempts, raw, 'echo 2 > src/value.txt'].join('; ');

    // Listing the control plane in sandbox.network is refused before anything runs.
    for (const entry of [`127.0.0.1:${temporal}`, `localhost:${api}`, `2130706433:${approver.port}`]) {
      const res = await stack.api('POST', '/v1/runs', {
        body: spec(repo, agent, { sandbox: { network: [entry] } }),
        token: submitter,
      });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toContain('sandbox.network');
    }

    // With a harmless public allowlist, so the proxy is up and every attempt goes through it or around it.
    const runs = await Promise.all(
      (['bwrap', 'docker'] as const).map(async (driver) => {
        const res = await stack.api('POST', '/v1/runs', {
          body: spec(repo, agent, { sandbox: { driver, network: ['registry.npmjs.org'] } }),
          token: submitter,
        });
        expect(res.status).toBe(202);
        return res.body.id as string;
      }),
    );
    for (const id of runs) {
      await stack.waitFor(id, ['awaiting_approval'], 170_000);
      const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
      expect(log).not.toContain('REACHED');
      expect(log).not.toContain('control plane reached');
      expect(log.match(/^proxy 403$/gm)?.length).toBe(ports.length * hosts.length);
      expect(log).toContain('[nightshift egress] deny CONNECT');
    }
    await sleep(500);
    expect(approver.heard).toEqual([]);
    const a = await stack.state(runA);
    expect(a.status).toBe('awaiting_approval');
    expect(a.decisions).toEqual([]);
    for (const id of [runA, ...runs]) await stack.api('POST', `/v1/runs/${id}/reject`, {});
  }, 300_000);

  test("an allowlisted name that resolves to an internal address (this machine's own name) is refused after resolving, in the setup stage's egress and the agent's; the listener heard nothing", async () => {
    const name = os.hostname().toLowerCase();
    const [answer] = (await dns.lookup(name, { all: true })).map((a) => a.address);
    expect(internalAddress(normalizeHost(answer)!)).toBeDefined();
    const repo = makeRepo(VALUE_REPO);
    // Plain HTTP through the proxy, then CONNECT, from each stage; each prints the proxy's answer.
    const tries = (stage: string) =>
      [
        `curl -s -m 5 --noproxy '' -x "$HTTP_PROXY" http://${name}:${approver.port}/${stage} -o /dev/null -w "${stage} proxy %{http_code}\\n"`,
        `curl -s -m 5 --noproxy '' -p -x "$HTTP_PROXY" http://${name}:${approver.port}/${stage} -o /dev/null -w "${stage} tunnel %{http_connect}\\n"`,
      ].join('; ');
    const id = await stack.submit(
      spec(repo, `${tries('agent')}; echo 2 > src/value.txt`, {
        sandbox: { driver: 'bwrap', network: [`${name}:${approver.port}`] },
        setup: { run: [`${tries('setup')}; true`], network: [`${name}:${approver.port}`] },
      }),
    );
    const state = await stack.waitFor(id, ['awaiting_approval', 'failed'], 170_000);
    const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text as string;
    expect(state.status).toBe('awaiting_approval');
    for (const line of ['setup proxy 403', 'setup tunnel 403', 'agent proxy 403', 'agent tunnel 403'])
      expect(log).toMatch(new RegExp(`^${line}$`, 'm'));
    const denials =
      log.match(
        new RegExp(
          `^\\[nightshift egress\\] deny (GET|CONNECT) ${name}:${approver.port} \\(${name} resolves to .*\\)$`,
          'gm',
        ),
      ) ?? [];
    expect(denials).toHaveLength(4);
    await sleep(300);
    expect(approver.heard).toEqual([]);
    await stack.api('POST', `/v1/runs/${id}/reject`, {});
  }, 240_000);
});
