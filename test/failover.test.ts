// A lost worker costs seconds at every point of a run, not only mid-activity (issue 24): ten runs over three worker
// processes, one SIGKILLed as soon as it holds a run mid-agent, with runs on it before, during and after their agents.
// A stage in flight there fails on its heartbeat; one bound for its queue after the kill, or a teardown, is given up
// when the fleet registry notices the silence and tells the runs watching it, not after
// NIGHTSHIFT_WORKER_QUEUE_TIMEOUT (its 2 min default here). Where the kill meets the other runs is up to the clock:
// the cases of a stage and a teardown bound for a dead worker's queue, each made to happen, are in
// test/workflow/workflow.test.ts.
import { gitIn, makeRepo } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';
import { exited, runMidAgent, useWorkerProcesses } from './helpers/workerProcess';

const RUNS = 10;
// Half the agents are done in a moment (past their agents when the kill comes), half work for 8 s (mid-agent then).
const agent = (seconds: number) => `echo 2 > src/value.txt; sleep ${seconds}`;

const fleet = useWorkerProcesses(3);

test(`${RUNS} runs over three workers, one SIGKILLed holding a run mid-agent: all reach approval within two runs' time plus 30 s`, async () => {
  const repo = makeRepo(VALUE_REPO);
  // One run alone (the slower kind): what a run takes on this machine now.
  const aloneAt = Date.now();
  const alone = await fleet.stack.submit(spec(repo, agent(8), { title: 'alone' }));
  await fleet.stack.waitFor(alone, ['awaiting_approval'], 120_000);
  const single = Date.now() - aloneAt;
  await fleet.stack.api('POST', `/v1/runs/${alone}/reject`, { body: { comment: 'timing only' } });

  const submittedAt = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < RUNS; i++)
    ids.push(await fleet.stack.submit(spec(repo, agent(i % 2 ? 8 : 0), { title: `failover ${i}` })));
  // A slow run (odd) mid-agent: its worker is killed under it.
  const { run: held, worker: killed } = await runMidAgent(
    fleet.stack,
    fleet.workers,
    ids.filter((_, i) => i % 2),
  );
  killed.kill('SIGKILL');
  await exited(killed);

  const bound = 2 * single + 30_000;
  const waiting = await Promise.all(ids.map((id) => fleet.stack.waitFor(id, ['awaiting_approval'], bound + 60_000)));
  const took = Date.now() - submittedAt;
  process.stderr.write(
    `[failover] one run alone ${single} ms; ${RUNS} runs with a kill ${took} ms; bound ${bound} ms\n`,
  );
  expect({ took, single, withinBound: took <= bound }).toEqual({ took, single, withinBound: true });

  // The run the dead worker held mid-agent moved to another.
  expect(waiting.find((w) => w.id === held)?.reprovisions).toBeGreaterThan(0);

  // Approved, each delivers its one commit and its workflow closes: nothing waits on the dead worker's queue.
  for (const id of ids) await fleet.stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'ok' } });
  const done = await Promise.all(ids.map((id) => fleet.stack.waitFor(id, ['succeeded'], 120_000)));
  for (const s of done) expect(gitIn(repo, 'rev-list', '--count', `main..${s.branch}`).trim()).toBe('1');
  const closingBy = Date.now() + 30_000;
  for (const id of ids) {
    const handle = fleet.stack.client.workflow.getHandle(id);
    while ((await handle.describe()).status.name === 'RUNNING' && Date.now() < closingBy)
      await new Promise((r) => setTimeout(r, 500));
    expect({ id, status: (await handle.describe()).status.name }).toEqual({ id, status: 'COMPLETED' });
  }
}, 600_000);

test('a worker SIGKILLed while two tasks of a plan run: both finish on another, the plan succeeds, each delivered once', async () => {
  const repo = makeRepo({ 'src/.keep': '' });
  const task = (t: string) => ({
    id: t,
    task: `write ${t}`,
    agent: { kind: 'command', command: ['sh', '-c', `echo ${t} > src/${t}.txt; sleep 8`] },
  });
  const id = await fleet.stack.submit({
    title: 'Two at once',
    task: 'Write two files.',
    repo,
    agent: { kind: 'command', command: ['true'] },
    scope: { allow: ['src/**'] },
    approval: { required: false },
    tasks: [task('b'), task('c')],
  });
  const { run: held, worker } = await runMidAgent(fleet.stack, fleet.workers, [`${id}-b`, `${id}-c`]);
  worker.kill('SIGKILL');
  await exited(worker);

  const plan = await fleet.stack.waitFor(id, ['succeeded', 'failed'], 300_000);
  expect({ status: plan.status, failure: plan.failure }).toEqual({ status: 'succeeded', failure: undefined });
  expect((await fleet.stack.state(held)).reprovisions).toBeGreaterThan(0);
  // Each task delivered once: one commit on its branch, and its one file on the plan's.
  for (const t of ['b', 'c']) {
    const s = await fleet.stack.state(`${id}-${t}`);
    expect({ t, commits: gitIn(repo, 'rev-list', '--count', `main..${s.branch}`).trim() }).toEqual({ t, commits: '1' });
  }
  expect(
    gitIn(repo, 'ls-tree', '-r', '--name-only', plan.branch)
      .split('\n')
      .filter((f) => f && f !== 'src/.keep'),
  ).toEqual(['src/b.txt', 'src/c.txt']);
}, 600_000);
