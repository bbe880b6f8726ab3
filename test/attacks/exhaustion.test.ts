import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { spec, VALUE_REPO } from '../helpers/specs';
import { makeRepo, startTestStack, type TestStack } from '../helpers/stack';
import type { RunState } from '../../contracts/run';

// Issue 20: a setup command or a check that exhausts its sandbox (a fork bomb at the process limit, a million files
// at the file limit) fails its run cleanly in that stage, naming the limit; the worker goes on, a run beside them is
// unaffected, and nothing of the failed runs is left: no sandbox directory, no cgroup.

// Left alone it would run until the setup's timeout: stopped when the process limit first refuses a fork.
const FORK_BOMB = 'f(){ f|f& }; f; sleep 300';
const MILLION_FILES = 'mkdir -p many && cd many && seq 1 1000000 | xargs touch';
const CGROUPS = '/sys/fs/cgroup/pids/nightshift';

let stack: TestStack;
let repo: string;
const LONG = 300_000;

beforeAll(async () => {
  stack = await startTestStack({ env: { NIGHTSHIFT_MAX_SANDBOXES: '4' } });
  repo = makeRepo(VALUE_REPO);
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

/** Paths that still name the run: its sandbox under the worker's work directory, its cgroup. */
function leftovers(runId: string): string[] {
  const dirs = (dir: string) =>
    existsSync(dir)
      ? readdirSync(dir, { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => path.join(dir, e.name))
      : [];
  const named = (d: string) => path.basename(d).includes(runId);
  return [...dirs(path.join(stack.config.home, 'work')).flatMap(dirs), ...dirs(CGROUPS).flatMap(dirs)].filter(named);
}

async function gone(runId: string): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  while (leftovers(runId).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  return leftovers(runId);
}

test(
  'a fork bomb in setup and a million files in a check each fail their run in that stage, naming the limit; a run beside them reaches approval; nothing is left of them',
  async () => {
    const started = Date.now();
    const [bomb, files, honest] = await Promise.all([
      stack.submit(
        spec(repo, 'echo 2 > src/value.txt', {
          title: 'fork bomb in setup',
          setup: { run: [FORK_BOMB] },
          limits: { iterations: 1 },
        }),
      ),
      stack.submit(
        spec(repo, 'echo 2 > src/value.txt', {
          title: 'a million files in a check',
          sandbox: { files: 20_000 },
          checks: [{ name: 'files', run: MILLION_FILES, baseline: false }],
          limits: { iterations: 1 },
        }),
      ),
      stack.submit(spec(repo, 'echo 2 > src/value.txt', { title: 'beside them' })),
    ]);
    const [b, f, h] = (await Promise.all(
      [bomb, files, honest].map((id) => stack.waitFor(id, ['failed', 'awaiting_approval'], LONG)),
    )) as RunState[];

    expect(b.status).toBe('failed');
    expect(b.failure).toMatchObject({
      stage: 'setup',
      reason: expect.stringContaining(`ran into a sandbox limit: too many processes (limit 512)`),
    });
    expect(b.stages.map((s) => s.stage)).not.toContain('agent');

    expect(f.status).toBe('failed');
    expect(f.checks[0]).toMatchObject({
      name: 'files',
      passed: false,
      limitHit: 'too many files (limit 20000 files and directories for the workspace, HOME and tmp)',
    });
    expect(f.failure?.reason).toContain('too many files');

    expect(h.status).toBe('awaiting_approval');
    await stack.api('POST', `/v1/runs/${honest}/reject`, { body: { comment: 'test over' } });
    // Bounded: the million was cut short within seconds, not written out.
    expect(Date.now() - started).toBeLessThan(240_000);

    // The failed runs left no sandbox and no cgroup.
    expect(await gone(bomb)).toEqual([]);
    expect(await gone(files)).toEqual([]);
  },
  2 * LONG,
);
