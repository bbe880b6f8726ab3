import { makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function runsOf(scheduleId: string): Promise<string[]> {
  const res = await stack.api('GET', '/v1/schedules');
  return res.body.schedules.find((s: { id: string }) => s.id === scheduleId)?.recentRuns ?? [];
}

test('a schedule fires on its cron, can be triggered, listed and deleted', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = `every-minute-${Date.now().toString(36)}`;
  const created = await stack.api('POST', '/v1/schedules', {
    body: { id, cron: '* * * * *', spec: spec(repo, 'echo 2 > src/value.txt', { approval: { required: false } }) },
  });
  expect(created.status).toBe(201);
  expect(created.body.id).toBe(id);
  const dup = await stack.api('POST', '/v1/schedules', { body: { id, cron: '* * * * *', spec: spec(repo, 'true') } });
  expect(dup.status).toBe(409);

  const listed = (await stack.api('GET', '/v1/schedules')).body.schedules.find((s: { id: string }) => s.id === id);
  expect(listed).toMatchObject({ id, cron: '* * * * *', title: 'Set the value to two', paused: false });
  expect(Date.parse(listed.nextRunAt)).toBeGreaterThan(Date.now() - 1000);

  // The cron fires within a minute, and the run it starts goes through the whole pipeline.
  const deadline = Date.now() + 75_000;
  let fired: string[] = [];
  while (fired.length === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    fired = await runsOf(id);
  }
  expect(fired.length).toBeGreaterThanOrEqual(1);
  expect(fired[0]).toMatch(new RegExp(`^ns-sched-${id}-`));
  const run = await stack.waitFor(fired[0], ['succeeded'], 90_000);
  expect(run.submittedBy).toBe(`admin (schedule ${id})`);

  const before = fired.length;
  expect((await stack.api('POST', `/v1/schedules/${id}/trigger`, {})).status).toBe(202);
  for (let i = 0; i < 50 && (await runsOf(id)).length <= before; i++) await new Promise((r) => setTimeout(r, 200));
  expect((await runsOf(id)).length).toBe(before + 1);

  expect((await stack.api('DELETE', `/v1/schedules/${id}`)).status).toBe(204);
  expect((await stack.api('DELETE', `/v1/schedules/${id}`)).status).toBe(404);
  expect((await stack.api('POST', `/v1/schedules/${id}/trigger`, {})).status).toBe(404);
});

test('a schedule with a bad cron or a bad spec is refused', async () => {
  const repo = makeRepo(VALUE_REPO);
  const badCron = await stack.api('POST', '/v1/schedules', {
    body: { cron: 'every tuesday', spec: spec(repo, 'true') },
  });
  expect(badCron.status).toBe(400);
  expect(badCron.body.error.message).toMatch(/cron/);
  const badSpec = await stack.api('POST', '/v1/schedules', { body: { cron: '0 6 * * *', spec: { title: 'x' } } });
  expect(badSpec.status).toBe(400);
  expect(badSpec.body.error.message).toMatch(/repo/);
});

test('a scheduled plan starts as a plan: its tasks each a run of their own, not one run of the spec', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = `plan-${Date.now().toString(36)}`;
  const plan = spec(repo, 'echo 2 > src/value.txt', { tasks: [{ id: 'value', task: 'Set the value.' }] });
  expect((await stack.api('POST', '/v1/schedules', { body: { id, cron: '0 6 1 1 *', spec: plan } })).status).toBe(201);
  const action = (await stack.client.schedule.getHandle(id).describe()).action;
  expect(action).toMatchObject({ type: 'startWorkflow', workflowType: 'planRun' });
  expect((await stack.api('DELETE', `/v1/schedules/${id}`)).status).toBe(204);
});
