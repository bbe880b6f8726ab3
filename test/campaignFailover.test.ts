// A campaign loses nothing to a dead worker (issue 25): six repos at concurrency 3 over three worker processes, one
// SIGKILLed while it holds a run mid-agent. The run moves to another worker; every repo ends once.
import { campaignWhen } from './helpers/campaigns';
import { gitIn, makeRepo } from './helpers/stack';
import { VALUE_REPO } from './helpers/specs';
import { exited, runMidAgent, useWorkerProcesses } from './helpers/workerProcess';

const agent = (seconds: number) => `echo 2 > src/value.txt; sleep ${seconds}`;

const fleet = useWorkerProcesses(3);

test('a worker SIGKILLed mid-campaign: every repo ends once (one run each, one commit each), the campaign succeeds', async () => {
  const repos = Array.from({ length: 6 }, () => makeRepo(VALUE_REPO));
  const started = await fleet.stack.api('POST', '/v1/campaigns', {
    body: {
      title: 'Set every value to two',
      task: 'Make src/value.txt contain 2.',
      agent: { kind: 'command', command: ['sh', '-c', agent(8)] },
      scope: { allow: ['src/**'] },
      checks: [{ name: 'value', run: 'grep -qx 2 src/value.txt' }],
      approval: { required: false },
      repos,
      concurrency: 3,
    },
  });
  expect(started.status).toBe(201);
  const { id } = started.body;
  const state = await campaignWhen(fleet.stack, id, (c) => c.counts.running === 3);
  const { run: held, worker } = await runMidAgent(
    fleet.stack,
    fleet.workers,
    state.repos.map((r) => r.runId),
  );
  worker.kill('SIGKILL');
  await exited(worker);

  const done = await campaignWhen(fleet.stack, id, (c) => c.status !== 'running', 400_000);
  expect({ status: done.status, counts: done.counts }).toMatchObject({ status: 'succeeded', counts: { succeeded: 6 } });
  expect((await fleet.stack.state(held)).reprovisions).toBeGreaterThan(0);
  for (const [i, r] of done.repos.entries()) {
    // Started once by the campaign, one execution of its run in Temporal, one commit delivered.
    const executions = [];
    for await (const e of fleet.stack.client.workflow.list({ query: `WorkflowId = '${r.runId}'` })) executions.push(e);
    const commits = gitIn(repos[i], 'rev-list', '--count', `main..${r.branch}`).trim();
    expect({ repo: r.repo, attempts: r.attempts, executions: executions.length, commits }).toEqual({
      repo: r.repo,
      attempts: 1,
      executions: 1,
      commits: '1',
    });
  }
}, 600_000);
