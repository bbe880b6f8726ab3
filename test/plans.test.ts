// Plans end to end (issue 24, in progress): a diamond submitted through the API, each task a real run (bwrap, git,
// the command agent) on a base that merges what its needs delivered.
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { gitIn, makeRepo, useTestStack } from './helpers/stack';
import type { RunState } from '../contracts/run';

const made = useTestStack({ 'README.md': 'plans\n' });

const task = (id: string, needs: string[], writes: string, expects: string[]) => ({
  id,
  task: `write ${writes}`,
  needs,
  agent: { kind: 'command', command: ['sh', '-c', `echo ${id} > src/${writes}; sleep 2`] },
  checks: [{ name: 'files', run: [...expects, writes].map((f) => `test -f src/${f}`).join(' && ') }],
});

test('a diamond through the API: b and c run at once after a; d runs on the merge of both and sees every file', async () => {
  const { stack } = made;
  const repo = makeRepo({ 'src/.keep': '' });
  const id = await stack.submit({
    title: 'Four files',
    task: 'Write the four files.',
    repo,
    agent: { kind: 'command', command: ['true'] },
    scope: { allow: ['src/**'] },
    tasks: [
      task('a', [], 'a.txt', []),
      task('b', ['a'], 'b.txt', ['a.txt']),
      task('c', ['a'], 'c.txt', ['a.txt']),
      task('d', ['b', 'c'], 'd.txt', ['a.txt', 'b.txt', 'c.txt']),
    ],
  });
  const plan = await stack.waitFor(id, ['succeeded', 'failed'], 300_000);
  expect({ status: plan.status, failure: plan.failure }).toEqual({ status: 'succeeded', failure: undefined });
  expect(plan.tasks!.map((t) => [t.id, t.state, t.runId])).toEqual(
    ['a', 'b', 'c', 'd'].map((t) => [t, 'passed', `${id}-${t}`]),
  );
  // Each task is a run of its own in the API, linked to its plan.
  const runs: Record<string, RunState> = {};
  for (const t of ['a', 'b', 'c', 'd']) {
    runs[t] = (await stack.api('GET', `/v1/runs/${id}-${t}`)).body;
    expect(runs[t]).toMatchObject({ status: 'succeeded', plan: { id, task: t } });
  }
  // b's and c's agents overlapped; d's started after both ended.
  const agent = (s: RunState) => s.stages.find((x) => x.stage === 'agent')!;
  const window = (s: RunState) => [Date.parse(agent(s).startedAt), Date.parse(agent(s).endedAt!)];
  const [b, c, d] = [window(runs.b), window(runs.c), window(runs.d)];
  expect(Math.max(b[0], c[0])).toBeLessThan(Math.min(b[1], c[1]));
  expect(d[0]).toBeGreaterThan(Math.max(b[1], c[1]));
  // d's branch holds every task's file.
  const tree = gitIn(repo, 'ls-tree', '-r', '--name-only', `nightshift/${id}/d`);
  expect(tree.split('\n').filter((f) => f.startsWith('src/') && f !== 'src/.keep')).toEqual([
    'src/a.txt',
    'src/b.txt',
    'src/c.txt',
    'src/d.txt',
  ]);
});

test('a task that fails finally: what needs it is skipped, the independent task succeeds, the plan fails naming it; no sandbox is left', async () => {
  const { stack } = made;
  const repo = makeRepo({ 'src/.keep': '' });
  const failing = { ...task('b', ['a'], 'b.txt', ['a.txt']), checks: [{ name: 'never', run: 'exit 1' }] };
  const id = await stack.submit({
    title: 'One fails',
    task: 'Write the files.',
    repo,
    agent: { kind: 'command', command: ['true'] },
    scope: { allow: ['src/**'] },
    limits: { iterations: 1 },
    tasks: [task('a', [], 'a.txt', []), failing, task('c', ['b'], 'c.txt', ['b.txt']), task('e', [], 'e.txt', [])],
  });
  const plan = await stack.waitFor(id, ['failed'], 300_000);
  expect(plan.failure?.reason).toMatch(/^task "b" failed: checks: Check "never" \(`exit 1`\) failed with exit code 1/);
  expect(plan.failure?.reason).toMatch(/; skipped: c$/);
  expect(plan.tasks!.map((t) => [t.id, t.state])).toEqual([
    ['a', 'passed'],
    ['b', 'failed'],
    ['c', 'skipped'],
    ['e', 'passed'],
  ]);
  expect(plan.tasks!.find((t) => t.id === 'c')!.reason).toBe('it needs "b", which failed');
  // c never ran: no run of it exists.
  expect((await stack.api('GET', `/v1/runs/${id}-c`)).status).toBe(404);
  const work = path.join(stack.config.home, 'work');
  const left = readdirSync(work).flatMap((w) => readdirSync(path.join(work, w)).filter((e) => e.includes(id)));
  expect(left).toEqual([]);
});
