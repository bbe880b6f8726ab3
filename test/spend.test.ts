import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { settle, type RequestUsage } from '../budget/ledger';
import type { SpendSummary, SpendTotals } from '../budget/spendView';
import { RUN_STATUSES } from '../contracts/run';
import type { Spender, SpendGrouping } from '../contracts/spend';
import { SPEC_RUN_WORKFLOW } from '../workflows/names';
import { STATUS_KEY } from '../workflows/searchAttributes';
import { runCli } from './helpers/cli';
import { makeRepo, startTestStack, type TestStack } from './helpers/stack';

// The spend view, the budgets above a run and the model metrics (docs/budgets.md), over a ledger booked by the real
// settle(): no worker, the numbers are known.
const DAY1 = Date.UTC(2026, 0, 5, 10);
const DAY2 = Date.UTC(2026, 0, 6, 23, 59);
const SEEDS: { who: Spender; usage: RequestUsage; at: number }[] = [
  { who: { token: 'alice', repo: 'billing' }, usage: usage('model-a', 100, 50, 0.01), at: DAY1 },
  { who: { token: 'alice', repo: 'billing' }, usage: usage('model-a', 200, 20, 0.02), at: DAY1 },
  { who: { token: 'alice', repo: 'web' }, usage: usage('model-b', 1000, 100, 0.5), at: DAY2 },
  { who: { token: 'bob', repo: 'billing' }, usage: usage('model-a', 10, 5, 0.001), at: DAY2 },
  { who: { token: 'schedule:nightly', repo: 'web' }, usage: usage('model-b', 300, 30, 0.03), at: DAY1 },
  { who: { token: 'schedule:nightly', repo: 'web' }, usage: usage('model-a', 7, 3, 0.25), at: DAY2 },
];

function usage(model: string, inputTokens: number, outputTokens: number, costUsd: number): RequestUsage {
  return { model, inputTokens, outputTokens, costUsd };
}

const keyOf = (seed: (typeof SEEDS)[number], by: SpendGrouping): string =>
  by === 'day' ? new Date(seed.at).toISOString().slice(0, 10) : by === 'model' ? seed.usage.model : seed.who[by];

/** The seeds' sums. */
function totalsOf(seeds: typeof SEEDS): SpendTotals {
  return {
    requests: seeds.length,
    inputTokens: seeds.reduce((n, s) => n + s.usage.inputTokens, 0),
    outputTokens: seeds.reduce((n, s) => n + s.usage.outputTokens, 0),
    costUsd: seeds.reduce((n, s) => n + s.usage.costUsd, 0),
  };
}

/** The seeds' sums per key, as the spend view is to answer them. */
function expected(by: SpendGrouping, seeds = SEEDS): Map<string, SpendTotals> {
  const keys = [...new Set(seeds.map((s) => keyOf(s, by)))];
  return new Map(keys.map((key) => [key, totalsOf(seeds.filter((s) => keyOf(s, by) === key))]));
}

function expectTotals({ requests, inputTokens, outputTokens, costUsd }: SpendTotals, want: SpendTotals): void {
  expect({ requests, inputTokens, outputTokens }).toEqual({ ...want, costUsd: undefined });
  expect(costUsd).toBeCloseTo(want.costUsd, 9);
}

/** A summary's groups match the seeds' sums per key, each model's share, and the total. */
function expectSummary(summary: SpendSummary, by: SpendGrouping, seeds = SEEDS): void {
  const sums = expected(by, seeds);
  expect(summary.by).toBe(by);
  expect(summary.groups.map((g) => g.key)).toEqual([...sums.keys()].sort());
  for (const group of summary.groups) {
    expectTotals(group, sums.get(group.key)!);
    const ofGroup = seeds.filter((s) => keyOf(s, by) === group.key);
    const models = expected('model', ofGroup);
    expect(Object.keys(group.models).sort()).toEqual([...models.keys()].sort());
    for (const [model, totals] of models) expectTotals(group.models[model], totals);
  }
  expectTotals(summary.total, totalsOf(seeds));
}

let stack: TestStack;
let alice: string;
let bob: string;
beforeAll(async () => {
  stack = await startTestStack({ worker: false });
  alice = stack.tokens.create('alice', 'viewer');
  bob = stack.tokens.create('bob', 'submitter', ['billing']);
  SEEDS.forEach((seed, i) => settle(stack.config.home, `request-${i}`, seed.who, [], seed.usage, seed.at));
});
afterAll(async () => {
  await stack?.stop();
});

const budgetsFile = () => path.join(stack.config.home, 'budgets.json');

test('GET /v1/spend: an admin sees every row summed by token, repo, day and model; day is the default', async () => {
  for (const by of ['token', 'repo', 'day', 'model'] as const) {
    const res = await stack.api<SpendSummary>('GET', `/v1/spend?by=${by}`);
    expect(res.status).toBe(200);
    expectSummary(res.body, by);
  }
  const byDay = (await stack.api<SpendSummary>('GET', '/v1/spend')).body;
  expect(byDay.groups.map((g) => g.key)).toEqual(['2026-01-05', '2026-01-06']);
  expect(byDay.groups[0]).toMatchObject({ requests: 3, inputTokens: 600, outputTokens: 100 });
  expect(byDay.total).toMatchObject({ requests: 6, inputTokens: 1617, outputTokens: 208 });
  expect(byDay.total.costUsd).toBeCloseTo(0.811, 9);
});

test('GET /v1/spend: any other token sees only its own spend, a repo-limited one too', async () => {
  const own = (name: string) => SEEDS.filter((s) => s.who.token === name);
  for (const by of ['token', 'repo', 'day', 'model'] as const) {
    const viewer = await stack.api<SpendSummary>('GET', `/v1/spend?by=${by}`, { token: alice });
    expect(viewer.status).toBe(200);
    expectSummary(viewer.body, by, own('alice'));
    const limited = await stack.api<SpendSummary>('GET', `/v1/spend?by=${by}`, { token: bob });
    expect(limited.status).toBe(200);
    expectSummary(limited.body, by, own('bob'));
  }
  const byToken = await stack.api<SpendSummary>('GET', '/v1/spend?by=token', { token: bob });
  expect(byToken.body.groups.map((g) => g.key)).toEqual(['bob']);
});

test('GET /v1/spend?by=nope: 400 naming by', async () => {
  const res = await stack.api('GET', '/v1/spend?by=nope');
  expect(res.status).toBe(400);
  expect(res.body.error.message).toMatch(/^by must be one of token, repo, day, model/);
});

test('PUT /v1/budgets: set, refuse a bad one leaving budgets.json as it was, list, remove; admins only', async () => {
  const set = await stack.api('PUT', '/v1/budgets/token/alice', { body: { budget: '20usd/day' } });
  expect(set.status).toBe(200);
  expect(set.body).toEqual({ kind: 'token', name: 'alice', budget: '20usd/day', runsSignalled: 0 });
  const repoName = path.basename(makeRepo({ 'README.md': 'spend\n' }));
  const repoSet = await stack.api('PUT', `/v1/budgets/repo/${repoName}`, { body: { budget: '1mtokens/month' } });
  expect(repoSet.status).toBe(200);
  const written = readFileSync(budgetsFile(), 'utf8');
  expect(JSON.parse(written)).toEqual({ token: { alice: '20usd/day' }, repo: { [repoName]: '1000000tokens/month' } });

  const bad = await stack.api('PUT', '/v1/budgets/token/alice', { body: { budget: '20 dollars' } });
  expect(bad.status).toBe(400);
  expect(bad.body.error.message).toMatch(/^budget: "20 dollars" is not a budget/);
  const notAString = await stack.api('PUT', '/v1/budgets/token/alice', { body: { budget: 20 } });
  expect(notAString.status).toBe(400);
  expect(notAString.body.error.message).toMatch(/^budget: /);
  expect(readFileSync(budgetsFile(), 'utf8')).toBe(written);

  for (const route of ['/v1/budgets/token/nobody', '/v1/budgets/repo/no-such-repo', '/v1/budgets/team/alice']) {
    const unknown = await stack.api('PUT', route, { body: { budget: '5usd/day' } });
    expect([route, unknown.status]).toEqual([route, 404]);
  }
  expect(readFileSync(budgetsFile(), 'utf8')).toBe(written);

  const listed = await stack.api('GET', '/v1/budgets');
  expect(listed.status).toBe(200);
  expect(listed.body).toEqual({
    token: { alice: '20usd/day' },
    repo: { [repoName]: '1000000tokens/month' },
    server: null,
  });

  const forbidden = await stack.api('PUT', '/v1/budgets/token/bob', { body: { budget: '5usd/day' }, token: bob });
  expect(forbidden.status).toBe(403);
  expect((await stack.api('GET', '/v1/budgets', { token: alice })).status).toBe(403);

  const removed = await stack.api('PUT', `/v1/budgets/repo/${repoName}`, { body: { budget: null } });
  expect(removed.body).toMatchObject({ budget: null });
  expect(JSON.parse(readFileSync(budgetsFile(), 'utf8'))).toEqual({ token: { alice: '20usd/day' }, repo: {} });
});

test('a budget change tells the runs awaiting_budget on this server', async () => {
  // A run as the API lists it awaiting budget: no worker here runs it, so it stays there.
  const id = `ns-spend-${Date.now()}`;
  const handle = await stack.client.workflow.start(SPEC_RUN_WORKFLOW, {
    taskQueue: stack.config.taskQueue,
    workflowId: id,
    args: [],
    typedSearchAttributes: [{ key: STATUS_KEY, value: 'awaiting_budget' }],
  });
  try {
    const query = `TaskQueue = '${stack.config.taskQueue}' AND NightshiftStatus = 'awaiting_budget'`;
    for (let i = 0; i < 100 && (await stack.client.workflow.count(query)).count === 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    const res = await stack.api('PUT', '/v1/budgets/token/bob', { body: { budget: '5usd/day' } });
    expect(res.body).toEqual({ kind: 'token', name: 'bob', budget: '5usd/day', runsSignalled: 1 });
    const history = await handle.fetchHistory();
    const signals = history.events!.flatMap((e) =>
      e.workflowExecutionSignaledEventAttributes ? [e.workflowExecutionSignaledEventAttributes.signalName] : [],
    );
    expect(signals).toEqual(['budgetLimitsChanged']);
  } finally {
    await handle.terminate('test over');
  }
});

test('/metrics: the model counters are the ledger sums; the run metrics are still served', async () => {
  const res = await stack.api('GET', '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = new Map(
    res.text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]),
  );
  for (const [model, totals] of expected('model')) {
    expect(samples.get(`nightshift_model_tokens_total{model="${model}",kind="input"}`)).toBe(totals.inputTokens);
    expect(samples.get(`nightshift_model_tokens_total{model="${model}",kind="output"}`)).toBe(totals.outputTokens);
    expect(samples.get(`nightshift_model_cost_usd_total{model="${model}"}`)).toBeCloseTo(totals.costUsd, 9);
  }
  expect(res.text).toContain('# TYPE nightshift_model_tokens_total counter');
  expect(res.text).toContain('# TYPE nightshift_stage_duration_seconds histogram');
  for (const status of RUN_STATUSES)
    expect([status, typeof samples.get(`nightshift_runs{status="${status}"}`)]).toEqual([status, 'number']);
  expect(samples.get('nightshift_queue_depth')).toBeGreaterThanOrEqual(0);
});

test('CLI: spend --json and its table; token add --budget, ls, rm; a bad --budget makes no token', async () => {
  const cli = (args: string[], token = stack.token) =>
    runCli(args, { NIGHTSHIFT_HOME: stack.config.home, NIGHTSHIFT_URL: stack.apiUrl, NIGHTSHIFT_TOKEN: token });
  const json = await cli(['spend', '--by', 'repo', '--json']);
  expect(json.code).toBe(0);
  expectSummary(JSON.parse(json.stdout) as SpendSummary, 'repo');
  const own = await cli(['spend'], alice);
  expect(own.stdout.split('\n')[0]).toMatch(/^DAY +REQUESTS +TOKENS IN +TOKENS OUT +COST$/);
  expect(own.stdout).toMatch(/^2026-01-05 +2 +300 +70 +\$0\.03$/m);
  expect(own.stdout).toMatch(/^total +3 +1300 +170 +\$0\.53$/m);

  const bad = await cli(['token', 'add', 'carol', '--budget', '20 dollars']);
  expect(bad).toMatchObject({ code: 2, stdout: '' });
  expect(bad.stderr).toMatch(/^nightshift: --budget: "20 dollars" is not a budget[^\n]*\n$/);
  expect(readFileSync(path.join(stack.config.home, 'tokens.json'), 'utf8')).not.toContain('carol');

  const added = await cli(['token', 'add', 'carol', '--budget', '$3/week']);
  expect(added.stdout).toMatch(/^ns_/);
  const listed = JSON.parse((await cli(['token', 'ls', '--json'])).stdout) as { tokens: { name: string }[] };
  expect(listed.tokens).toContainEqual({ name: 'carol', role: 'viewer', budget: '3usd/week' });
  expect((await cli(['token', 'ls'])).stdout).toMatch(/^carol +viewer +all +3usd\/week$/m);
  expect((await cli(['token', 'budget', 'carol', 'none'])).stdout).toBe('token carol: no budget\n');
  expect((await cli(['token', 'budget', 'carol', '4usd/day'])).stdout).toBe('token carol: budget 4usd/day\n');
  expect((await cli(['token', 'budget', 'carol', 'lots'])).code).toBe(2);
  expect((await cli(['token', 'rm', 'carol'])).code).toBe(0);
  expect(JSON.parse(readFileSync(budgetsFile(), 'utf8')).token).not.toHaveProperty('carol');
});
