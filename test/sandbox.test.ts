import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { EgressPolicy } from '../sandbox/egress';
import type { Sandbox, SandboxDriver } from '../sandbox/sandbox';
import { DockerDriver } from '../sandbox/docker';
import { DRIVERS, LIMITS, SANDBOX_IMAGE, sandboxRoot, sh } from './helpers/sandboxes';

// The Sandbox contract, for each driver against its real engine. What a sandbox must refuse is in
// sandbox-escape.test.ts.

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

describe.each(DRIVERS)('%s driver', (_name, makeDriver) => {
  let driver: SandboxDriver;
  let sandbox: Sandbox;
  let root: string;

  beforeAll(() => {
    driver = makeDriver();
  });
  beforeEach(async () => {
    const dirs = sandboxRoot('sandbox');
    root = dirs.root;
    sandbox = await driver.open({ runId: dirs.runId, root, limits: LIMITS, network: [] });
  });
  afterEach(async () => {
    await sandbox.teardown();
  });

  test('the workspace is writable and lands on the host; the system is read-only', async () => {
    const r = await sh(
      sandbox,
      'echo hello > /workspace/a.txt && echo made > b.txt; touch /usr/x 2>&1; touch /etc/x 2>&1; touch /x 2>&1; true',
    );
    expect(readFileSync(path.join(root, 'workspace', 'a.txt'), 'utf8')).toBe('hello\n');
    expect(readFileSync(path.join(root, 'workspace', 'b.txt'), 'utf8')).toBe('made\n');
    expect(r.out.match(/Read-only file system|Permission denied/g)?.length).toBe(3);
  });

  test('HOME and tmp are writable and last from one exec to the next', async () => {
    await sh(sandbox, 'echo kept > ~/note; echo kept > /tmp/note');
    const r = await sh(sandbox, 'cat ~/note /tmp/note; echo $HOME');
    expect(r.out).toBe('kept\nkept\n/home/sandbox\n');
  });

  test('the environment is built from scratch: only the base and the given variables', async () => {
    const r = await sh(sandbox, 'env', { env: { GIVEN: 'yes' } });
    expect(r.out).toMatch(/^HOME=\/home\/sandbox$/m);
    expect(r.out).toMatch(/^GIVEN=yes$/m);
    expect(r.out).toMatch(/^PATH=/m);
    expect(r.out).not.toMatch(/^(TEMPORAL|NIGHTSHIFT|npm_|JEST)/m);
  });

  test('output streams while the command runs', async () => {
    const seen: { chunk: string; at: number }[] = [];
    const started = Date.now();
    const r = await sandbox.exec({
      cmd: ['sh', '-c', 'echo first; sleep 1; echo second'],
      timeoutMs: 10_000,
      onOutput: (chunk) => seen.push({ chunk, at: Date.now() - started }),
    });
    expect(r.exitCode).toBe(0);
    // Streamed: "first" arrived a second before "second", not both at the end (start-up time varies with load).
    const first = seen.find((s) => s.chunk.includes('first'))!;
    const second = seen.find((s) => s.chunk.includes('second'))!;
    expect(second.at - first.at).toBeGreaterThan(700);
    expect(seen.map((s) => s.chunk).join('')).toBe('first\nsecond\n');
  });

  test('stdout and stderr stay apart; the exit code comes through', async () => {
    const streams: Record<string, string> = { stdout: '', stderr: '' };
    const r = await sandbox.exec({
      cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'],
      timeoutMs: 10_000,
      onOutput: (c, s) => (streams[s] += c),
    });
    expect(r.exitCode).toBe(3);
    expect(streams).toEqual({ stdout: 'out\n', stderr: 'err\n' });
  });

  test('a timeout kills the whole process tree, and the next exec works', async () => {
    const marker = 900000 + Math.floor(Math.random() * 90000);
    const r = await sh(sandbox, `sleep ${marker} & sleep ${marker + 1}`, { timeoutMs: 1000 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    await new Promise((res) => setTimeout(res, 500));
    expect(pgrep(`sleep ${marker}`)).toBe('');
    expect((await sh(sandbox, 'echo again')).out).toBe('again\n');
  });

  test('an abort signal cancels promptly', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const r = await sh(sandbox, 'sleep 60', { signal: controller.signal });
    expect(r.cancelled).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('teardown kills a running command (even from another sandbox object) and removes every file', async () => {
    const marker = 800000 + Math.floor(Math.random() * 90000);
    const running = sh(sandbox, `sleep ${marker}`, { timeoutMs: 60_000 });
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

  test('the run’s meta directory is readable at /nightshift, not writable', async () => {
    writeFileSync(path.join(root, 'meta', 'prompt.md'), 'do the thing');
    const r = await sh(sandbox, 'cat /nightshift/prompt.md; echo; echo x > /nightshift/prompt.md 2>&1 || echo refused');
    expect(r.out).toContain('do the thing');
    expect(r.out).toContain('refused');
    expect(readFileSync(path.join(root, 'meta', 'prompt.md'), 'utf8')).toBe('do the thing');
  });

  test('git works in the workspace, and the worker can still read what the sandbox committed', async () => {
    execFileSync('git', ['init', '--quiet', '-b', 'main', sandbox.workspace]);
    const r = await sh(
      sandbox,
      'echo x > f && git add f && git -c user.name=a -c user.email=a@b commit --quiet -m inside && git log --format=%s',
    );
    expect(r.out).toBe('inside\n');
    expect(
      execFileSync('git', ['-c', 'safe.directory=*', 'log', '--format=%s'], {
        cwd: sandbox.workspace,
        encoding: 'utf8',
      }),
    ).toBe('inside\n');
  });
});

test('docker: a sweep removes the containers of dead workers of its own home only', async () => {
  const host = process.env.NIGHTSHIFT_TEST_DOCKER_HOST!;
  const mine = new DockerDriver({ host, image: SANDBOX_IMAGE, worker: 'dead-worker', home: `sweep-${process.pid}` });
  const live = new DockerDriver({ host, image: SANDBOX_IMAGE, worker: 'live-worker', home: `sweep-${process.pid}` });
  const other = new DockerDriver({ host, image: SANDBOX_IMAGE, worker: 'dead-worker', home: `other-${process.pid}` });
  const boxes = await Promise.all(
    [mine, live, other].map(async (d) => {
      const dirs = sandboxRoot('sweep');
      const box = await d.open({ runId: dirs.runId, root: dirs.root, limits: LIMITS, network: [] });
      await box.exec({ cmd: ['true'], timeoutMs: 10_000 });
      return box;
    }),
  );
  const running = async (box: Sandbox) =>
    (await mine.docker.listContainers({ all: true, filters: { label: [`nightshift.run=${box.runId}`] } })).length;
  try {
    expect(await mine.sweep((worker) => worker === 'live-worker')).toEqual([boxes[0].runId]);
    expect([await running(boxes[0]), await running(boxes[1]), await running(boxes[2])]).toEqual([0, 1, 1]);
  } finally {
    for (const box of boxes) await box.teardown();
  }
});

test('a wildcard entry still refuses a name that resolves to an internal address; the admin’s opening lets it through', async () => {
  const policy = new EgressPolicy(['*.example.com', 'localhost:8080']);
  expect(policy.check('api.example.com', 443).rule).toBeDefined();
  expect(policy.check('example.com', 443).rule).toBeUndefined();
  expect(policy.check('api.example.com', 22).rule).toBeUndefined();
  expect(policy.check('api.example.com\u0000.evil', 443)).toEqual({ reason: 'malformed host name' });
  expect(policy.check('localhost', 8080).rule).toBeDefined();
  expect((await policy.resolve('localhost', 8080)).reason).toMatch(
    /^localhost resolves to internal address (127\.0\.0\.1|::1), which the server's admin has not opened/,
  );
  expect((await new EgressPolicy(['localhost:8080'], ['localhost:8080']).resolve('localhost', 8080)).address).toMatch(
    /^(127\.0\.0\.1|::1)$/,
  );
});
