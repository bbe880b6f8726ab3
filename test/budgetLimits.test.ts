// Limits above a run (docs/budgets.md): a token's budget is enforced by every run's gateway at once, through the spend
// ledger; runs stopped by it wait in awaiting_budget and go on by themselves when its window rolls over.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { readSpendRows } from '../budget/ledger';
import { parseBudget, type BudgetLimit } from '../spec/budget';
import { setBudget } from '../budget/limits';
import { makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { modelAgent, scriptedModel } from './helpers/model';
import { spec, VALUE_REPO } from './helpers/specs';

// The scripted model answers 30 in / 20 out tokens: $0.00039 a request at claude-sonnet's prices ($3 / $15 per MTok).
const REQUEST_USD = (30 * 3 + 20 * 15) / 1e6;

let stack: TestStack;
let model: Awaited<ReturnType<typeof scriptedModel>>;
beforeAll(async () => {
  stack = await startTestStack();
  model = await scriptedModel();
  stack.adminAllows({ modelUpstream: `http://127.0.0.1:${model.port}` });
  writeFileSync(path.join(stack.config.home, 'secrets.env'), 'ANTHROPIC_API_KEY=sk-ant-limits\n');
});
afterAll(async () => {
  model?.close();
  await stack?.stop();
});

/**
 * A window of whole seconds (aligned to the epoch, as every gateway computes it) that has between `min` and `max`
 * seconds left now: the runs spend within it, then wait for it to roll over, without a clock to fake.
 */
function windowWithLeft(min: number, max: number): number {
  const now = Date.now() / 1000;
  for (let n = max; n < 3600; n++) {
    const left = n - (now % n);
    if (left >= min && left <= max) return n;
  }
  throw new Error(`no window of ${max}..3600 s has ${min}..${max} s left`);
}

/**
 * The agent shows its prompt, waits for `start` (epoch seconds: both runs' agents begin together, however long each
 * took to provision), then calls its model until the gateway refuses (at most 20 times); told its iteration was
 * stopped by a budget, it calls none and finishes the task.
 */
const agentFrom = (start: number) =>
  [
    'cat /nightshift/prompt.md',
    "if grep -q 'stopped by a model budget' /nightshift/prompt.md; then echo 2 > src/value.txt; exit 0; fi",
    `while [ "$(date +%s)" -lt ${start} ]; do sleep 0.2; done`,
    'for i in $(seq 20); do',
    `  code=$(curl -s -o /dev/null -w '%{http_code}' "$ANTHROPIC_BASE_URL/v1/messages" -H "x-api-key: $ANTHROPIC_API_KEY" -d '{"model":"claude-sonnet-4-5","messages":[]}')`,
    '  [ "$code" = 429 ] && break',
    'done',
  ].join('\n');

async function submitAs(token: string, agent: string): Promise<string> {
  const body = spec(makeRepo(VALUE_REPO), agent, { agent: modelAgent(model.port, agent) });
  const res = await stack.api('POST', '/v1/runs', { body, token });
  if (res.status !== 202) throw new Error(`submit: ${res.status} ${res.text}`);
  return res.body.id;
}

test("two runs under one token's budget, started together, overspend it by at most one request; both wait in awaiting_budget naming it, and go on when its window rolls over", async () => {
  const seconds = windowWithLeft(40, 55);
  const budget = parseBudget(`0.001usd/${seconds}s`) as BudgetLimit;
  setBudget(stack.config.home, 'token', 'nightowl', budget); // as `nightshift token add nightowl --budget …` does
  const token = stack.tokens.create('nightowl', 'submitter');
  const agent = agentFrom(Math.ceil(Date.now() / 1000) + 12);
  const ids = await Promise.all([submitAs(token, agent), submitAs(token, agent)]);

  const waiting = await Promise.all(ids.map((id) => stack.waitFor(id, ['awaiting_budget', 'failed'], 60_000)));
  const windowEnd = Math.ceil(Date.now() / 1000 / seconds) * seconds * 1000;
  for (const state of waiting) {
    expect(state.status).toBe('awaiting_budget');
    expect(state.budget!.stoppedBy).toContain(`nightshift: token nightowl's budget of $0.001 per ${seconds}s`);
    expect(state.budget!.until).toBe(new Date(windowEnd).toISOString());
  }
  // Together they spent the budget, and past it by no more than one request.
  const spent = waiting.map((s) => s.modelUsage!.costUsd);
  const total = spent[0] + spent[1];
  expect(total).toBeGreaterThanOrEqual(0.001);
  expect(total).toBeLessThanOrEqual(0.001 + REQUEST_USD + 1e-12);
  // The ledger booked exactly what the runs metered, under the token and the run's model.
  const rows = readSpendRows(stack.config.home).filter((r) => r.token === 'nightowl');
  expect(rows.every((r) => r.model === 'claude-sonnet-4-5')).toBe(true);
  expect(rows.reduce((sum, r) => sum + r.costUsd, 0)).toBeCloseTo(total, 12);
  expect(rows.reduce((sum, r) => sum + r.requests, 0)).toBe(
    waiting.reduce((sum, s) => sum + s.modelUsage!.requests, 0),
  );
  // The spend view, as the token itself asks for it, says the same: its own spend, and no one else's.
  const view = (await stack.api('GET', '/v1/spend?by=token', { token })).body;
  expect(view.groups.map((g: { key: string }) => g.key)).toEqual(['nightowl']);
  expect(view.total.costUsd).toBeCloseTo(total, 12);
  expect(view.total.inputTokens + view.total.outputTokens).toBe(
    waiting.reduce((sum, s) => sum + s.modelUsage!.inputTokens + s.modelUsage!.outputTokens, 0),
  );

  // The window rolls over: both go on by themselves from their checkpoints, told why they were stopped.
  for (const id of ids) {
    const state = await stack.waitFor(id, ['awaiting_approval', 'failed'], seconds * 1000 + 60_000);
    expect(state).toMatchObject({ status: 'awaiting_approval', iteration: 2 });
    expect(Date.parse(state.updatedAt)).toBeGreaterThanOrEqual(windowEnd);
    const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
    expect(log).toContain('Your last iteration was stopped by a model budget, not by a problem in your work');
    expect(log).toContain('That limit has rolled over.');
    await stack.api('POST', `/v1/runs/${id}/reject`, { body: {} });
  }
}, 240_000);
