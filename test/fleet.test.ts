// The fleet's bookkeeping on one worker: sandbox slots bound how many runs hold a workspace at once, and the worker
// reports itself (capacity, load, drivers, agent CLIs) to the fleet registry that /v1/fleet reads.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as path from 'node:path';
import { makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';
import { fleetQuery, fleetWorkflowId } from '../workflows/fleet';
import type { RunState, WorkerReport } from '../contracts/run';

const CLI = path.resolve(__dirname, '..', 'cli', 'main.js');
let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ env: { NIGHTSHIFT_MAX_SANDBOXES: '1' } });
});
afterAll(async () => {
  await stack?.stop();
});

const registry = () => stack.client.workflow.getHandle(fleetWorkflowId(stack.config.taskQueue)).query(fleetQuery);

/** The worker's latest report once it satisfies `ok` (reports come every few seconds), or the last one seen. */
async function reportWhen(ok: (w: WorkerReport) => boolean): Promise<WorkerReport | undefined> {
  let seen: WorkerReport | undefined;
  for (const deadline = Date.now() + 30_000; Date.now() < deadline && !(seen && ok(seen));) {
    await new Promise((r) => setTimeout(r, 500));
    seen = (await registry().catch(() => [])).find((w) => w.name === stack.workerName);
  }
  return seen;
}

/**
 * When a run surely holds its slot: from its agent's start to its review's end (the teardown that gives the slot back
 * comes right after; the provision stage includes the wait for the slot).
 */
function heldWindow(run: RunState): [number, number] {
  const agent = run.stages.find((s) => s.stage === 'agent')!;
  const review = run.stages.filter((s) => s.stage === 'review').at(-1)!;
  return [Date.parse(agent.startedAt), Date.parse(review.endedAt!)];
}

test('a worker with one sandbox slot runs four runs one after another; its load and the claims queued show in the registry, the API and the CLI', async () => {
  const ids = [];
  for (let i = 0; i < 4; i++) {
    ids.push(
      await stack.submit(
        spec(makeRepo(VALUE_REPO), 'sleep 6; echo 2 > src/value.txt', { approval: { required: false } }),
      ),
    );
  }
  // While they work, the registry shows the worker full; the runs waiting for its slot wait in Temporal's queue, not
  // on the worker (a full worker does not poll: sandbox/claimSlotSupplier.ts).
  const seen = await reportWhen((w) => w.load === 1);
  expect(seen).toMatchObject({ capacity: 1, load: 1, waiting: 0, drivers: expect.arrayContaining(['bwrap']) });
  expect(seen!.agents.map((a) => a.kind)).toEqual(['command', 'claude-code', 'codex']);
  // The API and the CLI show the same, from Temporal alone; the runs waiting for the slot are the claim queue's
  // backlog.
  let fleet = (await stack.api('GET', '/v1/fleet')).body;
  for (const deadline = Date.now() + 15_000; fleet.queueDepth.claims < 1 && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 300));
    fleet = (await stack.api('GET', '/v1/fleet')).body;
  }
  expect(fleet.queueDepth.claims).toBeGreaterThanOrEqual(1);
  expect(fleet.workers).toContainEqual(
    expect.objectContaining({ identity: stack.workerName, capacity: 1, drivers: seen!.drivers, host: seen!.host }),
  );
  // Not execFileSync: the API answering it runs in this process.
  const { stdout: cli } = await promisify(execFile)(process.execPath, [CLI, 'fleet'], {
    env: { ...process.env, NIGHTSHIFT_URL: stack.apiUrl, NIGHTSHIFT_TOKEN: stack.token },
    encoding: 'utf8',
  });
  expect(cli).toMatch(
    new RegExp(
      `^  ${stack.workerName}  sandboxes [01]/1.*  drivers ${seen!.drivers.join(', ')}  agents command, claude-code \\d+\\.\\d+\\.\\d+, codex \\d+\\.\\d+\\.\\d+  rss \\d+ MiB`,
      'm',
    ),
  );
  expect(cli).toMatch(/^queue: \d+ runs waiting for a sandbox slot; \d+ workflow tasks, \d+ activity tasks waiting$/m);

  const runs = await Promise.all(ids.map((id) => stack.waitFor(id, ['succeeded'], 90_000)));
  const windows = runs.map(heldWindow).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < windows.length; i++) expect(windows[i][0]).toBeGreaterThanOrEqual(windows[i - 1][1]);
  // All slots given back.
  expect(await reportWhen((w) => w.load === 0 && w.waiting === 0)).toMatchObject({ capacity: 1, load: 0, waiting: 0 });
});

test("a campaign's runs yield to a newer single run when the worker is full: it takes the next free slot before the campaign's queued run", async () => {
  const repos = [0, 1, 2].map(() => makeRepo(VALUE_REPO));
  const started = await stack.api('POST', '/v1/campaigns', {
    body: {
      ...spec(repos[0], 'sleep 4; echo 2 > src/value.txt', { approval: { required: false } }),
      repo: undefined,
      repos,
      concurrency: 3,
    },
  });
  expect(started.status).toBe(201);
  // The first run holds the one slot; the others' claims wait in Temporal's queue (a full worker does not poll).
  expect(await reportWhen((w) => w.load === 1)).toMatchObject({ load: 1 });
  for (let deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 300)))
    if ((await stack.api('GET', '/v1/fleet')).body.queueDepth.claims >= 2) break;
  const single = await stack.submit(
    spec(makeRepo(VALUE_REPO), 'sleep 4; echo 2 > src/value.txt', { approval: { required: false } }),
  );
  const campaign = (await stack.api('GET', `/v1/campaigns/${started.body.id}`)).body as { repos: { runId: string }[] };
  const runs = await Promise.all(
    [...campaign.repos.map((r) => r.runId), single].map((id) => stack.waitFor(id, ['succeeded'], 120_000)),
  );
  const order = runs
    .map((run, i) => ({ who: i < 3 ? `campaign ${i + 1}` : 'single', at: heldWindow(run)[0] }))
    .sort((a, b) => a.at - b.at)
    .map((r) => r.who);
  // The single run took the next free slot, before the campaign's two submitted before it (first in, first out would
  // have put it last).
  expect(order).toEqual(['campaign 1', 'single', 'campaign 2', 'campaign 3']);
}, 240_000);
