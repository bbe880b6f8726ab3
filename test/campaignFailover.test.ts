// A campaign loses nothing to a dead worker (issue 25): six repos of a real Gitea, selected at concurrency 3, over
// three worker processes, one SIGKILLed while it holds a run mid-agent. The run moves to another worker; every repo
// ends once: one execution of its run in Temporal, one pull request on Gitea, one commit in it.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { campaignWhen } from './helpers/campaigns';
import { startGitea, type GiteaServer, type GiteaUser } from './helpers/gitea';
import { VALUE_REPO } from './helpers/specs';
import { exited, runMidAgent, useWorkerProcesses } from './helpers/workerProcess';

const agent = (seconds: number) => `echo 2 > src/value.txt; sleep ${seconds}`;

const fleet = useWorkerProcesses(3);
let gitea: GiteaServer;
let owner: GiteaUser;

beforeAll(async () => {
  gitea = await startGitea();
  owner = await gitea.createUser('fleet');
  for (let i = 1; i <= 6; i++) await gitea.createRepo(owner.name, `svc-${i}`, { files: VALUE_REPO });
  writeFileSync(path.join(fleet.stack.config.home, 'secrets.env'), `FLEET_TOKEN=${owner.token}\n`);
  const added = await fleet.stack.api('POST', '/v1/forges', {
    body: { name: 'gitea', url: gitea.url, credential: 'FLEET_TOKEN', owners: [owner.name] },
  });
  expect(added.status).toBe(201);
}, 300_000);
afterAll(async () => {
  await gitea?.stop();
});

test('a worker SIGKILLed mid-campaign: every repo ends once (one run, one pull request, one commit each), the campaign succeeds', async () => {
  const { stack, workers } = fleet;
  const started = await stack.api('POST', '/v1/campaigns', {
    body: {
      title: 'Set every value to two',
      task: 'Make src/value.txt contain 2.',
      agent: { kind: 'command', command: ['sh', '-c', agent(8)] },
      scope: { allow: ['src/**'] },
      checks: [{ name: 'value', run: 'grep -qx 2 src/value.txt' }],
      approval: { required: false },
      repos: { forge: 'gitea', owner: owner.name, match: 'svc-*' },
      concurrency: 3,
    },
  });
  expect([started.status, started.body.repos]).toEqual([201, 6]);
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
  for (const r of done.repos) {
    // Started once by the campaign, one execution of its run in Temporal; on Gitea one pull request, of one commit.
    const executions = [];
    for await (const e of stack.client.workflow.list({ query: `WorkflowId = '${r.runId}'` })) executions.push(e);
    const name = r.repo.slice(owner.name.length + 1);
    const pulls = await gitea.api<{ number: number; head: { ref: string } }[]>(
      'GET',
      `/repos/${owner.name}/${name}/pulls?state=all`,
    );
    const commits = pulls.length
      ? await gitea.api<{ sha: string }[]>('GET', `/repos/${owner.name}/${name}/pulls/${pulls[0].number}/commits`)
      : [];
    expect({
      repo: r.repo,
      attempts: r.attempts,
      executions: executions.length,
      pulls: pulls.map((p) => p.head.ref),
      commits: commits.map((c) => c.sha),
    }).toEqual({ repo: r.repo, attempts: 1, executions: 1, pulls: [r.branch], commits: [r.commit] });
  }
}, 600_000);
