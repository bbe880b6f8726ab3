import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { BwrapDriver } from '../sandbox/bwrap';
import { EgressPolicy, type EgressDecision } from '../sandbox/egress';
import type { SandboxLimits } from '../sandbox/policy';
import type { ExecOptions, ExecResult, Sandbox } from '../sandbox/sandbox';
import { tempDir } from './helpers/stack';

const driver = new BwrapDriver();
const LIMITS: SandboxLimits = { memoryBytes: 256 * 1024 ** 2, cpus: 1, pids: 64, openFiles: 256, fileSizeBytes: 8 * 1024 ** 2 };
let sandbox: Sandbox;
let root: string;

beforeEach(async () => {
  root = path.join(tempDir('sandbox'), 'run');
  sandbox = await driver.open({ runId: `test-${path.basename(path.dirname(root))}`, root, limits: LIMITS, network: [] });
});
afterEach(async () => {
  await sandbox.teardown();
});

async function run(cmd: string, opts: Partial<ExecOptions> = {}): Promise<ExecResult & { out: string }> {
  let out = '';
  const r = await sandbox.exec({ cmd: ['sh', '-c', cmd], timeoutMs: 10_000, onOutput: (c) => (out += c), ...opts });
  return { out, ...r };
}

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

test('the workspace is writable and lands on the host; the system is read-only', async () => {
  const r = await run('echo hello > /workspace/a.txt && echo made > b.txt; touch /usr/x 2>&1; touch /etc/x 2>&1; touch /x 2>&1; true');
  expect(readFileSync(path.join(root, 'workspace', 'a.txt'), 'utf8')).toBe('hello\n');
  expect(readFileSync(path.join(root, 'workspace', 'b.txt'), 'utf8')).toBe('made\n');
  expect(r.out.match(/Read-only file system|Permission denied/g)?.length).toBe(3);
});

test('the environment is built from scratch: no worker variable leaks in', async () => {
  process.env.NIGHTSHIFT_TEST_SECRET = 'hunter2-should-not-leak';
  try {
    const r = await run('env', { env: { GIVEN: 'yes' } });
    expect(r.out).not.toContain('hunter2');
    expect(r.out).toMatch(/^HOME=\/home\/sandbox$/m);
    expect(r.out).toMatch(/^GIVEN=yes$/m);
    expect(r.out).not.toMatch(/^(TEMPORAL|NIGHTSHIFT|npm_)/m);
  } finally {
    delete process.env.NIGHTSHIFT_TEST_SECRET;
  }
});

test("the host's home, /root, /run and /tmp are not visible; only chosen /etc files are", async () => {
  const marker = `nightshift-sandbox-${process.pid}`;
  const hostFiles = [path.join(os.homedir(), `.${marker}`), path.join(os.tmpdir(), marker)];
  for (const f of hostFiles) writeFileSync(f, 'secret');
  try {
    const r = await run(`for f in ${hostFiles.join(' ')}; do cat $f 2>&1; done; ls /root /run /var 2>&1; ls /etc`);
    expect(r.out).not.toContain('secret');
    expect(r.out).toMatch(/\/root.*No such file/);
    expect(r.out).toMatch(/\/run.*No such file/);
    expect(r.out).toContain('passwd');
    expect(r.out).not.toMatch(/^shadow$/m);
  } finally {
    for (const f of hostFiles) rmSync(f, { force: true });
  }
});

test('there is no network: a host server on loopback is unreachable from inside', async () => {
  const server = net.createServer((s) => s.end('hi')).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;
  try {
    const probe = `node -e "require('net').connect(${port}, '127.0.0.1').on('connect', () => { console.log('CONNECTED'); process.exit(0) }).on('error', (e) => { console.log('ERR', e.code); process.exit(1) })"`;
    const inside = await run(probe);
    expect(inside.out).toMatch(/ERR (ECONNREFUSED|ENETUNREACH)/);
    expect(inside.exitCode).toBe(1);
    // The same probe from the host connects, so the refusal above is the sandbox's doing.
    expect(execFileSync('sh', ['-c', probe], { encoding: 'utf8' })).toContain('CONNECTED');
  } finally {
    server.close();
  }
});

test('output streams while the command runs', async () => {
  const seen: { chunk: string; at: number }[] = [];
  const started = Date.now();
  const r = await sandbox.exec({ cmd: ['sh', '-c', 'echo first; sleep 1; echo second'], timeoutMs: 10_000, onOutput: (chunk) => seen.push({ chunk, at: Date.now() - started }) });
  expect(r.exitCode).toBe(0);
  const first = seen.find((s) => s.chunk.includes('first'))!;
  expect(first.at).toBeLessThan(r.durationMs - 500);
  expect(seen.map((s) => s.chunk).join('')).toBe('first\nsecond\n');
});

test('the exit code comes through', async () => {
  expect((await run('exit 3')).exitCode).toBe(3);
});

test('a timeout kills the whole process tree', async () => {
  const marker = 900000 + Math.floor(Math.random() * 90000);
  const r = await run(`sleep ${marker} & sleep ${marker + 1}`, { timeoutMs: 1000 });
  expect(r.timedOut).toBe(true);
  expect(r.exitCode).toBeNull();
  await new Promise((res) => setTimeout(res, 300));
  expect(pgrep(`sleep ${marker}`)).toBe('');
});

test('an abort signal cancels promptly', async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 300);
  const started = Date.now();
  const r = await run('sleep 60', { signal: controller.signal });
  expect(r.cancelled).toBe(true);
  expect(Date.now() - started).toBeLessThan(5000);
});

test('teardown kills a running command (even from another sandbox object) and removes every file', async () => {
  const marker = 800000 + Math.floor(Math.random() * 90000);
  const running = run(`sleep ${marker}`, { timeoutMs: 60_000 });
  for (let i = 0; i < 100 && !pgrep(`sleep ${marker}`); i++) await new Promise((r) => setTimeout(r, 100));
  expect(pgrep(`sleep ${marker}`)).not.toBe('');
  const reopened = await driver.open({ runId: sandbox.runId, root, limits: LIMITS, network: [] });
  await reopened.teardown();
  const r = await running;
  expect(r.exitCode).toBeNull();
  expect(pgrep(`sleep ${marker}`)).toBe('');
  expect(existsSync(root)).toBe(false);
  mkdirSync(root, { recursive: true }); // for afterEach's teardown
});

test('read-only mounts are readable, not writable', async () => {
  const meta = path.join(root, 'meta');
  writeFileSync(path.join(meta, 'prompt.md'), 'do the thing');
  const r = await run('cat /nightshift/prompt.md; echo; echo x > /nightshift/prompt.md 2>&1 || echo refused', { readOnly: [{ host: meta, target: '/nightshift' }] });
  expect(r.out).toContain('do the thing');
  expect(r.out).toContain('refused');
  expect(readFileSync(path.join(meta, 'prompt.md'), 'utf8')).toBe('do the thing');
});

describe('escapes and limits', () => {
  test('no capabilities, an unprivileged user, and only the sandbox’s own processes in view', async () => {
    const r = await run('grep CapEff /proc/self/status; id -u; ls /proc | grep -c "^[0-9]"; kill -9 ' + process.pid + ' 2>&1; date -s 2020-01-01 2>&1 >/dev/null; echo end');
    expect(r.out).toMatch(/^CapEff:\s+0000000000000000$/m);
    expect(r.out).toMatch(/^1000$/m);
    // bwrap, sh, ls and grep at most: no host process is visible
    expect(Number(/^(\d+)$/m.exec(r.out.split('\n').slice(2).join('\n'))![1])).toBeLessThanOrEqual(6);
    expect(r.out).toMatch(/No such process/);
    expect(r.out).toMatch(/cannot set date: Operation not permitted/);
    expect(r.out).toContain('end');
  });

  test('a fork bomb is contained by the process limit and reported', async () => {
    const r = await run('f(){ f|f& }; f; sleep 1; echo contained', { timeoutMs: 30_000 });
    expect(r.limitHit).toBe(`too many processes (limit ${LIMITS.pids})`);
    expect(r.timedOut).toBe(false);
    // The host is fine and the bomb is gone with the sandbox.
    expect(execFileSync('sh', ['-c', 'echo host ok'], { encoding: 'utf8' })).toBe('host ok\n');
  });

  test('a memory bomb is killed at the memory limit and reported', async () => {
    const r = await run(`node -e "const a = []; for (;;) a.push(Buffer.alloc(16 * 1024 * 1024, 1))"`, { timeoutMs: 30_000 });
    expect(r.exitCode).toBe(137);
    expect(r.limitHit).toBe('out of memory (limit 256 MiB)');
  });

  test('files are capped in size', async () => {
    const r = await run('head -c 20000000 /dev/zero > big 2>/dev/null; wc -c < big');
    expect(Number(r.out.trim().split('\n').pop())).toBe(LIMITS.fileSizeBytes);
  });

  test('.git/hooks and .git/config cannot be written by the agent; the rest of .git can', async () => {
    const ws = sandbox.workspace;
    execFileSync('git', ['init', '--quiet', ws]);
    const r = await run('echo "#!/bin/sh" > .git/hooks/pre-commit 2>&1; echo "[core]" >> .git/config 2>&1; rm -rf .git/hooks 2>&1; git -c user.name=a -c user.email=a@b commit --quiet --allow-empty -m inside && echo committed');
    expect(r.out.match(/Read-only file system|Device or resource busy/g)?.length).toBeGreaterThanOrEqual(2);
    expect(r.out).toContain('committed');
    expect(existsSync(path.join(ws, '.git', 'hooks', 'pre-commit'))).toBe(false);
    expect(readFileSync(path.join(ws, '.git', 'config'), 'utf8')).not.toContain('[core]\n[core]');
  });

  test('a symlink or hardlink planted in the workspace does not reach host files', async () => {
    const secret = path.join(os.homedir(), `.nightshift-planted-${process.pid}`);
    writeFileSync(secret, 'host secret');
    try {
      const r = await run(`ln -s ${secret} link; cat link 2>&1; echo overwrite > link 2>&1; ln ${secret} hard 2>&1; ln -s /etc/shadow shadow; cat shadow 2>&1; echo end`);
      expect(r.out).not.toContain('host secret');
      expect(r.out).toContain('end');
      expect(readFileSync(secret, 'utf8')).toBe('host secret');
    } finally {
      rmSync(secret, { force: true });
    }
  });
});

describe('egress through the worker’s proxy', () => {
  let server: http.Server;
  let port: number;
  let egress: Sandbox;
  const decisions: EgressDecision[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => res.end(`hello from the allowed host, ${req.method} ${req.url}\n`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => server.close());
  beforeEach(async () => {
    decisions.length = 0;
    egress = await driver.open({ runId: `egress-${path.basename(path.dirname(root))}`, root: `${root}-egress`, limits: LIMITS, network: [`127.0.0.1:${port}`, '*.example.com'] });
  });
  afterEach(async () => {
    await egress.teardown();
  });

  async function inside(cmd: string): Promise<string> {
    let out = '';
    await egress.exec({ cmd: ['sh', '-c', cmd], timeoutMs: 15_000, onOutput: (c) => (out += c), onEgress: (d) => decisions.push(d) });
    return out;
  }

  test('an allowlisted host is reachable by CONNECT and by plain HTTP; each decision is reported', async () => {
    const out = await inside(`curl -s --noproxy '' --proxytunnel -x "$HTTPS_PROXY" http://127.0.0.1:${port}/tunnel; curl -s --noproxy '' -x "$HTTP_PROXY" http://127.0.0.1:${port}/plain`);
    expect(out).toContain('hello from the allowed host, GET /tunnel');
    expect(out).toContain('hello from the allowed host, GET /plain');
    expect(decisions).toEqual([
      { allowed: true, method: 'CONNECT', target: `127.0.0.1:${port}`, reason: `allowed by 127.0.0.1:${port}` },
      { allowed: true, method: 'GET', target: `127.0.0.1:${port}`, reason: `allowed by 127.0.0.1:${port}` },
    ]);
  });

  test('everything else is denied: other hosts and ports, IP literals, cloud metadata, private ranges; direct connections and DNS fail', async () => {
    const out = await inside([
      `curl -s -o /dev/null -w "%{http_code}\\n" --noproxy '' -x "$HTTP_PROXY" http://127.0.0.1:${port + 1}/`,
      `curl -s -o /dev/null -w "%{http_code}\\n" --noproxy '' -x "$HTTP_PROXY" http://169.254.169.254/latest/meta-data/`,
      `curl -s -o /dev/null -w "%{http_code}\\n" --noproxy '' -x "$HTTP_PROXY" http://10.0.0.1/`,
      `curl -s -o /dev/null -w "%{http_code}\\n" --noproxy '' -x "$HTTP_PROXY" http://evil.test/`,
      `curl -s -m 3 http://127.0.0.1:${port}/direct --noproxy '*' || echo "direct: failed"`,
      `getent hosts example.com || echo "dns: failed"`,
    ].join('; '));
    expect(out.match(/^403$/gm)).toHaveLength(4);
    expect(out).toContain('direct: failed');
    expect(out).toContain('dns: failed');
    expect(out).not.toContain('hello from the allowed host');
    const denied = decisions.filter((d) => !d.allowed).map((d) => `${d.target} ${d.reason}`);
    expect(denied).toEqual([
      `127.0.0.1:${port + 1} IP literal not in the allowlist`,
      '169.254.169.254:80 IP literal not in the allowlist',
      '10.0.0.1:80 IP literal not in the allowlist',
      'evil.test:80 not in the allowlist',
    ]);
    expect(decisions.every((d) => !d.allowed)).toBe(true);
  });

  test('a wildcard entry still refuses a name that resolves to an internal address', async () => {
    const policy = new EgressPolicy(['*.example.com', 'localhost:8080']);
    expect(policy.check('api.example.com', 443).rule).toBeDefined();
    expect(policy.check('example.com', 443).rule).toBeUndefined();
    expect(policy.check('api.example.com', 22).rule).toBeUndefined();
    expect(policy.check('api.example.com\u0000.evil', 443)).toEqual({ reason: 'malformed host name' });
    const rule = policy.check('localhost', 8080).rule!;
    expect((await policy.resolve('localhost', rule)).address).toBe('127.0.0.1');
    expect(await policy.resolve('localhost', { ...rule, host: 'internal.example.com', wildcard: false })).toEqual({ reason: 'localhost resolves to internal address 127.0.0.1' });
  });
});
