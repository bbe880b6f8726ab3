import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as path from 'node:path';
import type { Sandbox, SandboxDriver } from '../../sandbox/sandbox';
import { DRIVERS, LIMITS, sandboxRoot, sh } from '../helpers/sandboxes';
import { spec, VALUE_REPO } from '../helpers/specs';
import { makeRepo, startTestStack, type TestStack } from '../helpers/stack';

// A secret given to a sandbox is readable inside it, and by no host process but the worker: not in any process's
// arguments (/proc/<pid>/cmdline, readable by every local user), nor in the environment of the processes the
// worker starts around the sandbox (wrapper shell, prlimit, bwrap, du, the engine, conmon, runc).

const OWN_PID_NS = readlinkSync('/proc/self/ns/pid');

interface Holder {
  pid: number;
  file: 'cmdline' | 'environ';
  pidNs: string;
  cmd: string;
}

/** Every process whose cmdline or environ holds `value` now. */
function holdersOf(value: string): Holder[] {
  const needle = Buffer.from(value);
  const found: Holder[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    for (const file of ['cmdline', 'environ'] as const) {
      try {
        if (!readFileSync(`/proc/${entry}/${file}`).includes(needle)) continue;
        const cmd = readFileSync(`/proc/${entry}/cmdline`).toString().replaceAll('\0', ' ').slice(0, 300);
        found.push({ pid: Number(entry), file, pidNs: readlinkSync(`/proc/${entry}/ns/pid`), cmd });
      } catch {
        // the process ended while being read
      }
    }
  }
  return found;
}

/** Scans /proc every few ms until stopped; returns every holder seen (pid and file once each). */
function watchHolders(value: string): { stop(): Holder[] } {
  const seen = new Map<string, Holder>();
  const scan = () => {
    for (const h of holdersOf(value)) seen.set(`${h.pid}/${h.file}`, h);
  };
  const timer = setInterval(scan, 15);
  return {
    stop() {
      clearInterval(timer);
      scan();
      return [...seen.values()];
    },
  };
}

/** Files of the engine's state (Podman's database of containers and exec sessions) that hold `value`. */
function engineStateHolding(value: string): string[] {
  const root = execFileSync('podman', ['info', '--format', '{{.Store.GraphRoot}}'], { encoding: 'utf8' }).trim();
  try {
    return execFileSync('grep', ['-rl', '--binary-files=text', value, path.join(root, 'libpod')], { encoding: 'utf8' })
      .trim()
      .split('\n');
  } catch {
    return []; // grep exits 1 when nothing matches
  }
}

/**
 * The holders in the host's pid namespace: the sandbox's own processes are in another (bwrap --unshare-pid, a
 * container).
 */
const onHost = (holders: Holder[]) => holders.filter((h) => h.pidNs === OWN_PID_NS && h.pid !== process.pid);

describe.each(DRIVERS)('%s driver', (_name, makeDriver) => {
  let driver: SandboxDriver;
  let sandbox: Sandbox;

  beforeAll(() => {
    driver = makeDriver();
  });
  beforeEach(async () => {
    const dirs = sandboxRoot('secrets-host');
    sandbox = await driver.open({ runId: dirs.runId, root: dirs.root, limits: LIMITS, network: [] });
  });
  afterEach(async () => {
    await sandbox.teardown();
  });

  it.each([
    ['sleep', ['sleep', '2']],
    ['a shell that spawns children', ['sh', '-c', 'sleep 2 & (sleep 2; true) & wait']],
  ])(
    'a secret given to %s is held by sandboxed processes only: no host process has it in cmdline or environ',
    async (_what, cmd) => {
      const canary = `canary-${randomBytes(12).toString('hex')}`;
      const watch = watchHolders(canary);
      const r = await sandbox.exec({ cmd, env: { NS_CANARY: canary }, timeoutMs: 30_000 });
      const holders = watch.stop();
      expect(r.exitCode).toBe(0);
      expect(onHost(holders)).toEqual([]);
      // The scan can see it: the sandboxed command itself holds the value.
      expect(holders.filter((h) => h.file === 'environ').length).toBeGreaterThan(0);
      // Nor does the engine keep it: Podman stores an exec's Env in its database, where it outlives the container.
      if (driver.name === 'docker') expect(engineStateHolding(canary)).toEqual([]);
      // The docker driver's env file is gone once the exec is over.
      expect(
        readdirSync(path.join(path.dirname(sandbox.workspace), 'meta')).filter((f) => f.startsWith('.env-')),
      ).toEqual([]);
    },
  );

  it('a value with newlines, quotes, $(…), backticks and backslashes arrives byte-exact and is not executed: no marker file in the workspace', async () => {
    const marker = path.join(sandbox.workspace, 'pwned');
    const value = `line one\nit's "quoted" $(touch /workspace/pwned) \`touch /workspace/pwned\` \\n \\\\ '\\'' $HOME é\t;exit 3\n`;
    const r = await sh(sandbox, 'printenv NS_TRICKY; echo "[$NS_PLAIN]"', {
      env: { NS_TRICKY: value, NS_PLAIN: 'plain' },
    });
    expect(r.exitCode).toBe(0);
    expect(r.out).toBe(`${value}\n[plain]\n`);
    expect(existsSync(marker)).toBe(false);
  });

  it('an environment variable name that is not a name is refused before anything runs', async () => {
    const marker = path.join(sandbox.workspace, 'ran');
    await expect(
      sandbox.exec({ cmd: ['touch', '/workspace/ran'], env: { 'A=$(id)': 'x' }, timeoutMs: 10_000 }),
    ).rejects.toThrow(/not a valid name/);
    expect(existsSync(marker)).toBe(false);
  });
});

describe('through a run', () => {
  const CANARY = `run-canary-${randomBytes(12).toString('hex')}`;
  let stack: TestStack;

  beforeAll(async () => {
    // The worker (this process) holds the value, set after it started: /proc/self/environ does not show it.
    process.env.NS_HOST_CANARY = CANARY;
    stack = await startTestStack({ env: { NIGHTSHIFT_ALLOWED_SECRETS: 'NS_HOST_CANARY' } });
  });
  afterAll(async () => {
    await stack?.stop();
    delete process.env.NS_HOST_CANARY;
  });

  it.each(['bwrap', 'docker'])(
    '%s: while the agent runs with a named secret, only sandboxed processes hold it',
    async (driver) => {
      const watch = watchHolders(CANARY);
      const agent = 'test -n "$NS_HOST_CANARY" && sleep 3 & sleep 3; wait; echo 2 > src/value.txt';
      const id = await stack.submit(
        spec(makeRepo(VALUE_REPO), agent, { secrets: ['NS_HOST_CANARY'], sandbox: { driver } }),
      );
      await stack.waitFor(id, ['awaiting_approval']);
      const holders = watch.stop();
      expect(onHost(holders)).toEqual([]);
      expect(holders.filter((h) => h.file === 'environ' && h.cmd.startsWith('sleep')).length).toBeGreaterThan(0);
      await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'test over' } });
    },
  );
});
