import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CommandLog } from '../workspaces/commandLog';
import type { EgressDecision } from '../sandbox/egress';
import { modelSocketPath } from '../sandbox/layout';
import { ModelGateway, PLACEHOLDER_KEY } from '../gateway/proxy';
import type { Sandbox, SandboxDriver } from '../sandbox/sandbox';
import { RunLog } from '../store/runLog';
import { DRIVERS, LIMITS, sandboxRoot, sh } from './helpers/sandboxes';

// What a stranger's code must not do from inside a sandbox, for each driver against its real engine. Each case
// asserts the exact denial and that the host is unchanged. The sandbox has an allowlist (one host server), so the
// egress proxy is up while the escapes are tried: getting around it is part of the suite.

const CANARY = `canary-${process.pid}-do-not-leak`;

/** A host TCP server on loopback; `hits` counts connections that reached it. */
async function hostServer(body: string): Promise<{ port: number; hits: () => number; close: () => void }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    res.end(`${body} ${req.method} ${req.url}\n`);
  });
  server.on('connection', () => hits++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, hits: () => hits, close: () => server.close() };
}

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

describe.each(DRIVERS)('%s driver: escapes', (_name, makeDriver) => {
  let driver: SandboxDriver;
  let sandbox: Sandbox;
  let home: string;
  let root: string;
  let allowed: Awaited<ReturnType<typeof hostServer>>;
  let forbidden: Awaited<ReturnType<typeof hostServer>>;
  const decisions: EgressDecision[] = [];
  const planted: string[] = [];

  /** A file on the host with a secret in it, removed after the suite. */
  function plant(file: string, content = `secret in ${file}`): string {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
    planted.push(file);
    return file;
  }

  async function run(cmd: string, timeoutMs = 20_000) {
    return sh(sandbox, cmd, { timeoutMs, onEgress: (d) => decisions.push(d) });
  }

  beforeAll(async () => {
    driver = makeDriver();
    allowed = await hostServer('hello from the allowed host');
    forbidden = await hostServer('hello from a forbidden host');
    const dirs = sandboxRoot('escape');
    home = dirs.home;
    root = dirs.root;
    // Laid out like a worker's home: the run's sandbox under work/, Nightshift's own secrets beside it.
    plant(path.join(home, 'tokens.json'), `{"admin": "${CANARY}-token"}`);
    plant(path.join(home, 'keys', 'signing.key'), `${CANARY}-signing-key`);
    plant(path.join(home, 'secrets.env'), `ANTHROPIC_API_KEY=${CANARY}-model-key`);
    plant(path.join(root, '.env'), `DATABASE_URL=${CANARY}-dotenv`);
    plant(path.join(os.homedir(), '.ssh', `id_nightshift_escape_${process.pid}`), `${CANARY}-ssh-key`);
    plant(path.join('/root', `nightshift-escape-${process.pid}`), `${CANARY}-root-file`);
    process.env.NIGHTSHIFT_ESCAPE_CANARY = `${CANARY}-worker-env`;
    // The allowed host server is on loopback: internal, so the admin's opening is needed as well as the spec's entry.
    sandbox = await driver.open({
      runId: dirs.runId,
      root,
      limits: LIMITS,
      network: [`127.0.0.1:${allowed.port}`],
      internal: [`127.0.0.1:${allowed.port}`],
    });
    execFileSync('git', ['init', '--quiet', '-b', 'main', sandbox.workspace]);
  });
  afterAll(async () => {
    delete process.env.NIGHTSHIFT_ESCAPE_CANARY;
    await sandbox.teardown();
    allowed.close();
    forbidden.close();
    for (const f of planted) rmSync(f, { force: true });
  });
  beforeEach(() => {
    decisions.length = 0;
  });

  test('host secrets are out of sight: ~/.ssh, /root, an .env beside the workspace, Nightshift’s tokens and signing key', async () => {
    const targets = [...planted, '../.env', '../../../../tokens.json', '../../../../keys/signing.key'];
    const r = await run(
      `for f in ${targets.join(' ')}; do cat "$f" 2>&1 || echo "denied: $f"; done; ls -a /root 2>&1; ls ~ 2>&1`,
    );
    expect(r.out).not.toContain(CANARY);
    for (const f of targets) expect(r.out).toContain(`denied: ${f}`);
    expect(r.out).toMatch(/No such file or directory/);
  });

  test('the worker’s environment and other processes’ environments are not readable', async () => {
    const r = await run('env; cat /proc/1/environ /proc/*/environ 2>/dev/null | tr "\\0" "\\n"; echo done', 20_000);
    expect(r.out).toContain('done');
    expect(r.out).not.toContain(CANARY);
    expect(r.out).not.toMatch(/NIGHTSHIFT_ESCAPE_CANARY|TEMPORAL|JEST_WORKER/);
  });

  test('nothing outside the workspace can be written: absolute paths, ../, a planted symlink, a hardlink', async () => {
    const outside = path.join(home, 'outside');
    mkdirSync(outside, { recursive: true });
    const target = plant(path.join(outside, 'target.txt'), 'original');
    symlinkSync(outside, path.join(sandbox.workspace, 'link-out'));
    const r = await run(
      [
        `echo pwned > ${path.join(outside, 'abs.txt')} 2>&1 || echo "denied: absolute"`,
        'echo pwned > ../escape.txt 2>&1 || echo "denied: dotdot"',
        'echo pwned > /escape.txt 2>&1 || echo "denied: root"',
        'echo pwned > link-out/target.txt 2>&1 || echo "denied: symlink"',
        `ln ${target} hard 2>&1 || echo "denied: hardlink"`,
        `ln -s ${target} soft; echo pwned > soft 2>&1 || echo "denied: new symlink"`,
      ].join('; '),
    );
    for (const how of ['absolute', 'dotdot', 'root', 'symlink', 'hardlink', 'new symlink'])
      expect(r.out).toContain(`denied: ${how}`);
    expect(readFileSync(target, 'utf8')).toBe('original');
    expect(readdirSync(outside).sort()).toEqual(['target.txt']);
    expect(existsSync(path.join(root, 'escape.txt'))).toBe(false);
    expect(existsSync('/escape.txt')).toBe(false);
    rmSync(path.join(sandbox.workspace, 'link-out'));
  });

  test('no way out but the proxy: direct HTTP, raw TCP, IP literals, DNS and cloud metadata all fail', async () => {
    const r = await run(
      [
        `curl -s -m 3 --noproxy '*' http://127.0.0.1:${forbidden.port}/direct || echo "denied: direct http"`,
        `node -e "require('net').connect(${forbidden.port}, '127.0.0.1').on('connect', () => console.log('CONNECTED')).on('error', (e) => console.log('denied: raw tcp', e.code))"`,
        `curl -s -m 3 --noproxy '*' http://169.254.169.254/latest/meta-data/ || echo "denied: metadata direct"`,
        `curl -s -o /dev/null -w "proxy says %{http_code}\\n" --noproxy '' -x "$HTTP_PROXY" http://169.254.169.254/latest/meta-data/`,
        `curl -s -o /dev/null -w "proxy says %{http_code}\\n" --noproxy '' -x "$HTTP_PROXY" http://127.0.0.1:${forbidden.port}/`,
        `curl -s -o /dev/null -w "proxy says %{http_code}\\n" --noproxy '' -x "$HTTP_PROXY" http://example.com/`,
        'getent hosts example.com || echo "denied: dns"',
      ].join('; '),
    );
    for (const how of ['direct http', 'raw tcp', 'metadata direct', 'dns']) expect(r.out).toContain(`denied: ${how}`);
    expect(r.out.match(/^proxy says 403$/gm)).toHaveLength(3);
    expect(r.out).not.toContain('CONNECTED');
    expect(forbidden.hits()).toBe(0);
    expect(decisions.map((d) => `${d.allowed} ${d.target}`)).toEqual([
      'false 169.254.169.254:80',
      `false 127.0.0.1:${forbidden.port}`,
      'false example.com:80',
    ]);
  });

  test('an allowlisted host stays reachable through the proxy', async () => {
    const r = await run(
      `curl -s --noproxy '' http://127.0.0.1:${allowed.port}/ok; curl -s --noproxy '' --proxytunnel -x "$HTTPS_PROXY" http://127.0.0.1:${allowed.port}/tunnel`,
    );
    expect(r.out).toContain('hello from the allowed host GET /ok');
    expect(r.out).toContain('hello from the allowed host GET /tunnel');
    expect(decisions.every((d) => d.allowed)).toBe(true);
  });

  test('host services are unreachable: the Temporal port, a host loopback service, the Docker/Podman socket', async () => {
    const temporalPort = Number(process.env.NIGHTSHIFT_TEST_TEMPORAL!.split(':').pop());
    const engineSocket = process.env.NIGHTSHIFT_TEST_DOCKER_HOST!.replace('unix://', '');
    const r = await run(
      [
        `curl -s -m 3 --noproxy '*' http://127.0.0.1:${temporalPort}/ || echo "denied: temporal"`,
        `curl -s -m 3 --noproxy '*' http://127.0.0.1:${forbidden.port}/ || echo "denied: loopback service"`,
        ...[engineSocket, '/var/run/docker.sock', '/run/podman/podman.sock'].map(
          (s) => `curl -s -m 3 --unix-socket ${s} http://d/version || echo "denied: ${s}"`,
        ),
      ].join('; '),
    );
    expect(r.out).toContain('denied: temporal');
    expect(r.out).toContain('denied: loopback service');
    expect(r.out).toContain(`denied: ${engineSocket}`);
    expect(r.out).not.toMatch(/ApiVersion|Podman/);
    expect(forbidden.hits()).toBe(0);
  });

  test('the model API key cannot be read: not in the environment, not in /proc, and the gateway cannot be sent elsewhere', async () => {
    const key = `${CANARY}-model-api-key`;
    const upstreamSaw: string[] = [];
    const upstream = http.createServer((req, res) => {
      upstreamSaw.push(`${req.url} ${req.headers['x-api-key']}`);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ usage: { input_tokens: 1, output_tokens: 1 }, echo: req.url }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const gateway = new ModelGateway({
      vendor: 'anthropic',
      upstream: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`,
      adminListed: true,
      apiKey: key,
    });
    await gateway.listen(modelSocketPath(root));
    try {
      const r = await sh(
        sandbox,
        [
          'env | grep -i -e key -e anthropic',
          'cat /proc/*/environ 2>/dev/null | tr "\\0" "\\n" | grep -c model-api-key',
          `curl -s "$ANTHROPIC_BASE_URL/v1/messages" -d '{}'; echo`,
          `curl -s --noproxy '' -x "$ANTHROPIC_BASE_URL" http://127.0.0.1:${forbidden.port}/steal; echo`,
          `curl -s -H "Host: 127.0.0.1:${forbidden.port}" "$ANTHROPIC_BASE_URL/redirect"; echo`,
        ].join('; '),
        {
          env: { ANTHROPIC_BASE_URL: 'http://127.0.0.1:3129', ANTHROPIC_API_KEY: PLACEHOLDER_KEY },
          modelGateway: true,
        },
      );
      expect(r.out).not.toContain(key);
      expect(r.out).toContain(`ANTHROPIC_API_KEY=${PLACEHOLDER_KEY}`);
      expect(r.out).toMatch(/^0$/m);
      // Every request went to the configured upstream, whatever URL or Host the sandbox named.
      expect(upstreamSaw).toEqual([`/v1/messages ${key}`, `/steal ${key}`, `/redirect ${key}`]);
      expect(forbidden.hits()).toBe(0);
    } finally {
      await gateway.close();
      upstream.close();
    }
  });

  test('the host’s processes are invisible and out of reach; only the sandbox’s own are in view', async () => {
    const r = await run(
      `kill -9 ${process.pid} 2>&1; ls /proc/${process.pid} 2>&1; echo "visible: $(ls /proc | grep -c '^[0-9]')"; grep -E "CapEff|NoNewPrivs" /proc/self/status; id -u`,
    );
    expect(r.out).toMatch(/No such process/);
    expect(r.out).toMatch(new RegExp(`/proc/${process.pid}.*No such file`));
    // sh, ls, grep and the sandbox's own init at most
    expect(Number(/visible: (\d+)/.exec(r.out)![1])).toBeLessThanOrEqual(6);
    expect(r.out).toMatch(/^CapEff:\s+0000000000000000$/m);
    expect(r.out).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(r.out).toMatch(/^1000$/m);
  });

  test('no privilege: mount, unshare, a setuid binary and the clock are all refused', async () => {
    const clockBefore = Date.now();
    const r = await run(
      [
        'mount -t tmpfs none /tmp 2>&1 || echo "denied: mount"',
        'unshare -U -r id 2>&1 || echo "denied: unshare user"',
        'unshare -m true 2>&1 || echo "denied: unshare mount"',
        'su root -c id </dev/null 2>&1 || echo "denied: setuid su"',
        'date -s 2020-01-01 2>&1 >/dev/null || echo "denied: clock"',
      ].join('; '),
    );
    for (const how of ['mount', 'unshare user', 'unshare mount', 'setuid su', 'clock'])
      expect(r.out).toContain(`denied: ${how}`);
    expect(r.out).not.toMatch(/uid=0/);
    expect(r.out).toMatch(/cannot set date: Operation not permitted/);
    expect(Math.abs(Date.now() - clockBefore)).toBeLessThan(60_000);
  });

  test('a fork bomb is contained by the process limit and reported; the host stays responsive', async () => {
    const r = await run('f(){ f|f& }; f; sleep 2; echo contained', 30_000);
    expect(r.limitHit).toBe(`too many processes (limit ${LIMITS.pids})`);
    expect(r.timedOut).toBe(false);
    expect(execFileSync('sh', ['-c', 'echo host ok'], { encoding: 'utf8', timeout: 5000 })).toBe('host ok\n');
  });

  test('a memory bomb is killed at the memory limit and reported', async () => {
    const r = await run(`node -e "const a = []; for (;;) a.push(Buffer.alloc(16 * 1024 * 1024, 1))"`, 30_000);
    expect(r.exitCode).toBe(137);
    expect(r.limitHit).toBe('out of memory (limit 256 MiB)');
  });

  test('an output flood is capped in the log, and the worker holds no more than the cap', async () => {
    const runLog = new RunLog(home);
    const log = new CommandLog(runLog, sandbox.runId, 'flood', {});
    const heapBefore = process.memoryUsage().heapUsed;
    let streamed = 0;
    const r = await sandbox.exec({
      cmd: ['sh', '-c', 'yes flood | head -c 100000000'],
      timeoutMs: 60_000,
      onOutput: (c) => {
        streamed += c.length;
        log.write(c);
      },
    });
    expect(r.exitCode).toBe(0);
    expect(streamed).toBe(100_000_000);
    const text = log.text();
    expect(text).toContain('[nightshift: log truncated at');
    expect(text.length).toBeLessThan(17 * 1024 ** 2);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 ** 2);
  });

  test('filling the disk stops at the disk limit, with the reason', async () => {
    const r = await run('i=0; while :; do i=$((i+1)); head -c 4000000 /dev/zero > fill.$i || exit 1; done', 60_000);
    expect(r.limitHit).toBe('disk full (limit 64 MiB for the workspace, HOME and tmp)');
    expect(r.timedOut).toBe(false);
    const used = readdirSync(sandbox.workspace)
      .filter((f) => f.startsWith('fill.'))
      .reduce((sum, f) => sum + statSync(path.join(sandbox.workspace, f)).size, 0);
    expect(used).toBeGreaterThan(LIMITS.diskBytes);
    // Polled twice a second; bounded well below what would matter to the host.
    expect(used).toBeLessThan(LIMITS.diskBytes + 2 * 1024 ** 3);
    // Removed from the host: an rm in the sandbox, still over the limit, could be killed by the disk watch under load
    // and leave the files for the next test to be killed by.
    for (const f of readdirSync(sandbox.workspace).filter((n) => n.startsWith('fill.')))
      rmSync(path.join(sandbox.workspace, f));
  });

  test('writing a million empty files (no disk blocks) stops at the file limit, with the reason, long before a million', async () => {
    const started = Date.now();
    const r = await run('mkdir -p many && cd many && seq 1 1000000 | xargs touch', 90_000);
    const seconds = (Date.now() - started) / 1000;
    expect(r.limitHit).toBe(
      `too many files (limit ${LIMITS.files} files and directories for the workspace, HOME and tmp)`,
    );
    expect(r.timedOut).toBe(false);
    const made = readdirSync(path.join(sandbox.workspace, 'many')).length;
    expect(made).toBeGreaterThan(LIMITS.files / 2);
    // Polled twice a second: stopped within seconds, well short of the million.
    expect(made).toBeLessThan(500_000);
    expect(seconds).toBeLessThan(60);
    rmSync(path.join(sandbox.workspace, 'many'), { recursive: true, force: true });
  });

  test('sleeping past the time limit kills the whole process tree', async () => {
    const marker = 700000 + Math.floor(Math.random() * 90000);
    const r = await run(`(sleep ${marker} &); sh -c "sleep ${marker + 1}"`, 1500);
    expect(r.timedOut).toBe(true);
    await new Promise((res) => setTimeout(res, 500));
    expect(pgrep(`sleep ${marker}`)).toBe('');
    expect(lstatSync(sandbox.workspace).isDirectory()).toBe(true);
  });
});
