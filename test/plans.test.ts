// Plans end to end (issue 24): a diamond submitted through the API, each task a real run (bwrap, git, the command
// agent) on a base that merges what its needs delivered, then the integration: the plan's checks on every task
// merged, one approval, one branch delivered.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { unpackTarGz } from '../proof/tar';
import { runCli } from './helpers/cli';
import { gitIn, makeRepo, tempDir, useTestStack } from './helpers/stack';
import type { RunState } from '../contracts/run';

const made = useTestStack({ 'README.md': 'plans\n' });

/** A task writing one file, checked for it and for what its needs wrote. */
const task = (id: string, needs: string[], writes: string, expects: string[]) => ({
  id,
  task: `write ${writes}`,
  needs,
  agent: { kind: 'command', command: ['sh', '-c', `echo ${id} > src/${writes}`] },
  checks: [{ name: 'files', run: [...expects, writes].map((f) => `test -f src/${f}`).join(' && ') }],
});

test('a diamond through the API: b and c at once after a, c fixed in its second iteration, d on the merge of both; one approval delivers all four', async () => {
  const { stack } = made;
  const repo = makeRepo({ 'src/.keep': '' });
  // c's first attempt leaves only a note, which its check fails; its second writes the file and removes the note.
  const c = task('c', ['a'], 'c.txt', ['a.txt']);
  c.agent.command[2] =
    'if [ -f src/c.note ]; then rm src/c.note; echo c > src/c.txt; else echo trying > src/c.note; fi';
  const all = ['a', 'b', 'c', 'd'].map((f) => `test -f src/${f}.txt`).join(' && ');
  const id = await stack.submit({
    title: 'Four files',
    task: 'Write the four files.',
    repo,
    agent: { kind: 'command', command: ['true'] },
    scope: { allow: ['src/**'] },
    // The plan's own checks: the integration's, on every task merged.
    checks: [{ name: 'all-four', run: `${all} && ! test -e src/c.note` }],
    tasks: [
      task('a', [], 'a.txt', []),
      task('b', ['a'], 'b.txt', ['a.txt']),
      c,
      task('d', ['b', 'c'], 'd.txt', ['a.txt', 'b.txt', 'c.txt']),
    ],
  });
  const waiting = await stack.waitFor(id, ['awaiting_approval'], 300_000);
  expect(waiting.tasks!.map((t) => [t.id, t.state, t.runId])).toEqual(
    ['a', 'b', 'c', 'd'].map((t) => [t, 'passed', `${id}-${t}`]),
  );
  expect(waiting.integration).toMatchObject({ runId: `${id}-integration`, status: 'awaiting_approval' });
  // Each task is a run of its own in the API, linked to its plan; none awaited an approval of its own.
  const runs: Record<string, RunState> = {};
  for (const t of ['a', 'b', 'c', 'd', 'integration']) {
    runs[t] = (await stack.api('GET', `/v1/runs/${id}-${t}`)).body;
    expect(runs[t]).toMatchObject({ plan: { id, task: t } });
  }
  for (const t of ['a', 'b', 'c', 'd']) expect(runs[t]).toMatchObject({ status: 'succeeded', decisions: [] });
  expect(runs.c.iteration).toBe(2);
  expect(runs.c.checks.map((x) => x.passed)).toEqual([true]);
  // b's and c's runs overlapped; d's started after both ended. Whole runs, not their agents: beside the suite's other
  // work, two sandboxes provisioned at once can be ready further apart than any agent's few seconds.
  const agents = (s: RunState) => s.stages.filter((x) => x.stage === 'agent');
  const window = (s: RunState) => [
    Math.min(...s.stages.map((x) => Date.parse(x.startedAt))),
    Math.max(...s.stages.map((x) => Date.parse(x.endedAt!))),
  ];
  const [b, cw, d] = [window(runs.b), window(runs.c), window(runs.d)];
  expect(Math.max(b[0], cw[0])).toBeLessThan(Math.min(b[1], cw[1]));
  expect(d[0]).toBeGreaterThan(Math.max(b[1], cw[1]));
  // The integration ran no agent (the merge was clean) and its checks passed on the whole.
  const integration = runs.integration;
  expect(agents(integration)).toHaveLength(1);
  expect(integration.agent).toMatchObject({
    command: '(none)',
    exitCode: 0,
    logTail: 'no agent in this iteration: the integration judges the merged tasks as they are first',
  });
  expect(integration.agent!.tool).toBeUndefined();
  expect(integration.checks.map((x) => [x.name, x.passed])).toEqual([['all-four', true]]);

  // A request for changes naming no task of the plan is refused, naming the field, and changes nothing.
  const bad = await stack.api('POST', `/v1/runs/${id}/request-changes`, { body: { comment: 'x', task: 'zz' } });
  expect({ status: bad.status, message: bad.body.error?.message }).toEqual({
    status: 400,
    message: `task: no task "zz" in plan ${id} (its tasks: a, b, c, d)`,
  });
  expect((await stack.state(id)).status).toBe('awaiting_approval');

  // One approval, of the plan, delivers the plan's branch.
  expect((await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'all of it' } })).status).toBe(202);
  const plan = await stack.waitFor(id, ['succeeded', 'failed'], 120_000);
  expect({ status: plan.status, failure: plan.failure }).toEqual({ status: 'succeeded', failure: undefined });
  const files = gitIn(repo, 'ls-tree', '-r', '--name-only', plan.branch).split('\n');
  expect(files.filter((f) => f.startsWith('src/') && f !== 'src/.keep')).toEqual([
    'src/a.txt',
    'src/b.txt',
    'src/c.txt',
    'src/d.txt',
  ]);
  // The branch's commits are the tasks' (c's two iterations) and the merges: its base's under d, and the
  // integration's own start.
  const log = gitIn(repo, 'log', '--format=%(trailers:key=Nightshift-Run,valueonly)', `main..${plan.branch}`);
  const byRun = log.split('\n').filter(Boolean);
  // The integration's: the merge of its start (d's branch over the base).
  expect([...new Set(byRun)].sort()).toEqual(['a', 'b', 'c', 'd', 'integration'].map((t) => `${id}-${t}`));
  expect(byRun.filter((r) => r === `${id}-c`)).toHaveLength(2);
  // Those commits are the tasks' own, as their runs signed them and their proofs name them: each task's final commit
  // is on the plan's branch, and `nightshift verify --commit` ties it to its task's run.
  for (const t of ['a', 'b', 'c', 'd']) {
    expect(() => gitIn(repo, 'merge-base', '--is-ancestor', runs[t].finalCommit!, plan.branch)).not.toThrow();
    const verified = await runCli(['verify', '--commit', repo, runs[t].finalCommit!], stack.env);
    expect({ t, code: verified.code, stderr: verified.stderr }).toEqual({ t, code: 0, stderr: '' });
  }
  // And the plan's final commit, the integration's signed merge, to the integration's run.
  const last = await runCli(['verify', '--commit', repo, plan.finalCommit!], stack.env);
  expect({ code: last.code, stderr: last.stderr }).toEqual({ code: 0, stderr: '' });
  expect(last.stdout).toContain(`${id}-integration`);
  const decided = (await stack.api('GET', `/v1/runs/${id}-integration`)).body as RunState;
  expect(decided.decisions).toMatchObject([{ kind: 'approve', comment: 'all of it', channel: 'api', verified: true }]);
  expect(plan.proofId).toBe(decided.proofId);

  // The plan's proof verifies offline, and names each task's proof by digest, with the graph.
  const dir = tempDir('plan-proof');
  expect(await runCli(['proof', decided.id, '-o', dir], stack.env)).toMatchObject({ code: 0 });
  const key = path.join(dir, 'server.pub');
  writeFileSync(key, (await stack.api('GET', '/v1/keys')).body.keys[0].publicKeyPem);
  const bundle = path.join(dir, `${decided.id}-proof.tar.gz`);
  const offline = { NIGHTSHIFT_URL: 'http://127.0.0.1:1', NIGHTSHIFT_TOKEN: '' };
  expect(await runCli(['verify', bundle, '--key', key], offline)).toMatchObject({ code: 0, stderr: '' });
  const envelope = JSON.parse((await unpackTarGz(readFileSync(bundle))).get('attestation.json')!.toString());
  const provenance = JSON.parse(Buffer.from(envelope.payload, 'base64').toString());
  // No agent ran in the integration, and its provenance names none.
  const dependencies = provenance.predicate.buildDefinition.resolvedDependencies as { name: string }[];
  expect(dependencies.map((r) => r.name)).not.toContain('agent');
  const needs: Record<string, string[]> = { a: [], b: ['a'], c: ['a'], d: ['b', 'c'] };
  expect(
    provenance.predicate.buildDefinition.resolvedDependencies.filter((r: { name: string }) =>
      r.name.startsWith('task:'),
    ),
  ).toEqual(
    ['a', 'b', 'c', 'd'].map((t) => ({
      name: `task:${t}`,
      uri: `nightshift:run/${id}-${t}`,
      digest: { sha256: runs[t].proofId },
      annotations: { needs: needs[t] },
    })),
  );
});

test('a task that fails finally: what needs it is skipped, the others finish, the plan fails naming it, no sandbox left; two tasks changing one line: the task that needs both is told of the conflict and delivers no markers', async () => {
  const { stack } = made;
  const repo = makeRepo({ 'src/.keep': '', 'src/shared.txt': 'base\n' });
  const failing = { ...task('b', ['a'], 'b.txt', ['a.txt']), checks: [{ name: 'never', run: 'exit 1' }] };
  const writes = (id: string, needs: string[], command: string) => ({
    id,
    task: `change the shared line (${id})`,
    needs,
    agent: { kind: 'command', command: ['sh', '-c', command] },
    checks: [{ name: 'no-markers', run: "! grep -qE '^(<<<<<<<|=======|>>>>>>>)' src/shared.txt" }],
  });
  const id = await stack.submit({
    title: 'One fails, two collide',
    task: 'Write the files.',
    repo,
    agent: { kind: 'command', command: ['true'] },
    scope: { allow: ['src/**'] },
    limits: { iterations: 1 },
    tasks: [
      task('a', [], 'a.txt', []),
      failing,
      task('c', ['b'], 'c.txt', ['b.txt']),
      task('e', [], 'e.txt', []),
      writes('x', [], 'echo x > src/shared.txt'),
      writes('y', [], 'echo y > src/shared.txt'),
      // z keeps both tasks' lines, as its feedback asks.
      writes('z', ['x', 'y'], "printf 'x\\ny\\n' > src/shared.txt"),
    ],
  });
  const plan = await stack.waitFor(id, ['failed'], 300_000);
  expect(plan.failure?.reason).toMatch(/^task "b" failed: checks: Check "never" \(`exit 1`\) failed with exit code 1/);
  expect(plan.failure?.reason).toMatch(/; skipped: c$/);
  expect(plan.tasks!.map((t) => [t.id, t.state])).toEqual([
    ['a', 'passed'],
    ['b', 'failed'],
    ['c', 'skipped'],
    ['e', 'passed'],
    ['x', 'passed'],
    ['y', 'passed'],
    ['z', 'passed'],
  ]);
  expect(plan.tasks!.find((t) => t.id === 'c')!.reason).toBe('it needs "b", which failed');
  // c never ran: no run of it exists.
  expect((await stack.api('GET', `/v1/runs/${id}-c`)).status).toBe(404);
  // z's base held both x's and y's change with git's markers; its one iteration was told so, and it delivered both
  // lines, no markers.
  const z = (await stack.api('GET', `/v1/runs/${id}-z`)).body as RunState;
  expect(z.iteration).toBe(1);
  expect(z.feedback).toMatch(/\(x, y\), and their changes conflict in: src\/shared\.txt\./);
  expect(gitIn(repo, 'show', `${z.branch}:src/shared.txt`)).toBe('x\ny\n');
  const work = path.join(stack.config.home, 'work');
  const left = readdirSync(work).flatMap((w) => readdirSync(path.join(work, w)).filter((e) => e.includes(id)));
  expect(left).toEqual([]);
});
