// The Temporal server on PostgreSQL (temporal/cluster.ts): runs only under `npm run test:cluster`, which builds the
// server and installs PostgreSQL (jest.config.js leaves this file out otherwise).
import { gitIn, makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';
import { startKillableTemporal, type KillableTemporal } from './helpers/temporalServer';

let cluster: KillableTemporal;
let stack: TestStack;

beforeAll(async () => {
  cluster = await startKillableTemporal('postgres');
  stack = await startTestStack({ temporalAddress: cluster.address });
});

afterAll(async () => {
  await stack?.stop();
  await cluster?.stop();
});

test("a run's workflow is stored in PostgreSQL: its execution, its history and its visibility row", async () => {
  const id = await stack.submit(spec(makeRepo(VALUE_REPO), 'echo 2 > src/value.txt'));
  await stack.waitFor(id, ['awaiting_approval']);
  expect(cluster.sql('temporal', `SELECT count(*) FROM executions WHERE workflow_id = '${id}'`).trim()).toBe('1');
  // The history's events are rows too: many batches by now (provision, agent, checks, review, …).
  expect(
    Number(
      cluster.sql(
        'temporal',
        `SELECT count(*) FROM history_node h JOIN executions e ON h.tree_id = e.run_id WHERE e.workflow_id = '${id}'`,
      ),
    ),
  ).toBeGreaterThan(5);
  const [type, status] = cluster
    .sql(
      'temporal_visibility',
      `SELECT workflow_type_name, status FROM executions_visibility WHERE workflow_id = '${id}'`,
    )
    .trim()
    .split('|');
  expect([type, status]).toEqual(['specRun', '1']); // 1 = running
  // Custom search attributes sit in a JSONB column under pre-allocated field names (Keyword01, Text01, …).
  const attributes = cluster
    .sql(
      'temporal_visibility',
      `SELECT value FROM executions_visibility, jsonb_each_text(search_attributes) WHERE workflow_id = '${id}'`,
    )
    .trim()
    .split('\n');
  expect(attributes).toEqual(expect.arrayContaining(['awaiting_approval', 'Set the value to two']));
});

test('a run survives a SIGKILL of the server and a restart on the same database', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt'));
  const before = await stack.waitFor(id, ['awaiting_approval']);

  expect(await cluster.kill()).toBe('SIGKILL');
  // While the server is down the API cannot answer for the run; PostgreSQL still holds it.
  expect((await stack.api('GET', `/v1/runs/${id}`)).status).toBeGreaterThanOrEqual(500);
  expect(cluster.sql('temporal', `SELECT count(*) FROM executions WHERE workflow_id = '${id}'`).trim()).toBe('1');

  await cluster.restart(); // on the same address, or it throws
  // The same worker and API, reconnected: the run is where it was, and goes on to the end.
  const after = await stack.waitFor(id, ['awaiting_approval'], 60_000);
  expect(after.stages).toEqual(before.stages);
  expect(after.diffId).toBe(before.diffId);
  expect((await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'after the crash' } })).status).toBe(
    202,
  );
  const done = await stack.waitFor(id, ['succeeded'], 90_000);
  expect(gitIn(repo, 'show', `${done.branch}:src/value.txt`)).toBe('2\n');
});
