// A campaign loses nothing to a dead worker (issue 25): six repos at concurrency 3 over three worker processes, one
// SIGKILLed while it holds a run mid-agent. The run moves to another worker; every repo ends once.
import type { ChildProcess } from 'node:child_process';
import { campaignWhen } from './helpers/campaigns';
import { gitIn, makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { VALUE_REPO } from './helpers/specs';
import { connected, exited, runMidAgent, startWorkerProcess } from './helpers/workerProcess';

const agent = (seconds: number) => `echo 2 > src/value.txt; sleep ${seconds}`;

let stack: TestStack;
const workers: ChildProcess[] = [];
beforeAll(async () => {
  stack = await startTestStack({ worker: false, env: { NIGHTSHIFT_MAX_SANDBOXES: '4' } });
  for (let i = 0; i < 3; i++) workers.push(startWorkerProcess(stack.env));
  await Promise.all(workers.map((w) => connected(w)));
}, 120_000);
afterAll(async () => {
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map(exited));
  await stack?.stop();
});

test('a worker SIGKILLed mid-campaign: every repo ends once (one run each, one commit each), the campaign succeeds', async () => {
  const repos = Array.from({ length: 6 }, () => makeRepo(VALUE_REPO));
  const started = await stack.api('POST', '/v1/campaigns', {
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
  const state = await campaignWhen(stack, id, (c) => c.counts.running === 3);
  const { run: held, worker } = await runMidAgent(
    stack,
    workers,
    state.repos.map((r) => r.runId),
  );
  worker.kill('SIGKILL');
  await exited(worker);

  const done = await campaignWhen(stack, id, (c) => c.status !== 'running', 400_000);
  expect({ status: done.status, counts: done.counts }).toMatchObject({ status: 'succeeded', counts: { succeeded: 6 } });
  expect((await stack.state(held)).reprovisions).toBeGreaterThan(0);
  for (const [i, r] of done.repos.entries()) {
    // Started once by the campaign, one execution of its run in Temporal, one commit delivered.
    const executions = [];
    for await (const e of stack.client.workflow.list({ query: `WorkflowId = '${r.runId}'` })) executions.push(e);
    const commits = gitIn(repos[i], 'rev-list', '--count', `main..${r.branch}`).trim();
    expect({ repo: r.repo, attempts: r.attempts, executions: executions.length, commits }).toEqual({
      repo: r.repo,
      attempts: 1,
      executions: 1,
      commits: '1',
    });
  }
}, 600_000);
