import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { admit, readSpendRows, settle, type ScopedLimit } from '../../budget/ledger';
import { parseBudget, windowAt, type BudgetLimit } from '../../spec/budget';
import { limitsFor, setBudget } from '../../budget/limits';

const limit = (text: string) => parseBudget(text) as BudgetLimit;
const home = () => mkdtempSync(path.join(tmpdir(), 'ledger-'));
const WHO = { token: 'alice', repo: 'acme' };
const usage = (costUsd: number) => ({ model: 'claude-sonnet-4-5', inputTokens: 30, outputTokens: 20, costUsd });

test('budget strings: an amount per window, normalized; anything else an error quoting it', () => {
  expect(parseBudget('20usd/day')).toEqual({ unit: 'usd', amount: 20, window: 'day', text: '20usd/day' });
  expect(parseBudget('$2.5/month')).toMatchObject({ unit: 'usd', amount: 2.5, text: '2.5usd/month' });
  expect(parseBudget('100ktokens/30s')).toMatchObject({ unit: 'tokens', amount: 100_000, window: '30s' });
  for (const bad of ['20usd', '20 dollars/day', '20usd/fortnight', '-5usd/day', '0usd/day', '5usd/day/x', '5usd/0s'])
    expect(parseBudget(bad)).toEqual({ error: expect.stringContaining(`"${bad}" is not a budget`) });
});

test('windows are aligned: a UTC day, a calendar month, whole multiples of N seconds since the epoch', () => {
  const t = Date.parse('2026-12-07T13:45:10.500Z');
  expect(windowAt('day', t)).toEqual({ start: Date.parse('2026-12-07'), end: Date.parse('2026-12-08') });
  expect(windowAt('month', t)).toEqual({ start: Date.parse('2026-12-01'), end: Date.parse('2027-01-01') });
  expect(windowAt('week', t).start).toBe(Date.parse('2026-12-07')); // a Monday
  expect(windowAt('30s', t)).toEqual({
    start: Date.parse('2026-12-07T13:45:00Z'),
    end: Date.parse('2026-12-07T13:45:30Z'),
  });
});

test('near a limit requests go one at a time, so two gateways together overspend by at most one request', () => {
  const dir = home();
  const limits: ScopedLimit[] = [{ scope: 'token alice', limit: limit('1usd/day') }];
  const now = Date.parse('2026-12-07T10:00:00Z');
  // Nothing is known of the requests' size yet: the second waits for the first.
  expect(admit(dir, 'a1', limits, now)).toEqual({ admitted: true });
  expect(admit(dir, 'b1', limits, now)).toEqual({ wait: "near token alice's budget, another request is in flight" });
  settle(dir, 'a1', WHO, limits, usage(0.4), now);
  // Spent 0.4; room for one 0.4 request beside none in flight: b goes; a then has no room beside it, and waits.
  expect(admit(dir, 'b1', limits, now)).toEqual({ admitted: true });
  expect(admit(dir, 'a2', limits, now)).toMatchObject({ wait: expect.any(String) });
  settle(dir, 'b1', WHO, limits, usage(0.4), now);
  expect(admit(dir, 'a2', limits, now)).toEqual({ admitted: true });
  settle(dir, 'a2', WHO, limits, usage(0.4), now);
  // 1.2 spent: over by less than one request; every further request is refused until the next UTC day.
  const refused = admit(dir, 'b2', limits, now);
  expect(refused).toEqual({
    refused: "nightshift: token alice's budget of $1 a day (used $1.200000) is spent until 2026-12-08T00:00:00.000Z",
    until: Date.parse('2026-12-08'),
  });
  expect(admit(dir, 'b2', limits, Date.parse('2026-12-08T00:00:01Z'))).toEqual({ admitted: true });
  // With sizes known, as many go together as there is room for at the largest size seen (0.4; 0.1 spent).
  settle(dir, 'b2', WHO, limits, usage(0.1), Date.parse('2026-12-08T00:00:02Z'));
  const later = Date.parse('2026-12-08T00:00:03Z');
  expect(['c1', 'c2', 'c3'].map((id) => Object.keys(admit(dir, id, limits, later))[0])).toEqual([
    'admitted',
    'admitted',
    'wait',
  ]);
});

test('a request lost with its worker stops holding its place after 15 minutes', () => {
  const dir = home();
  const limits: ScopedLimit[] = [{ scope: 'the server', limit: limit('1usd/month') }];
  const now = Date.parse('2026-12-07T10:00:00Z');
  expect(admit(dir, 'lost', limits, now)).toEqual({ admitted: true });
  expect(admit(dir, 'next', limits, now + 60_000)).toMatchObject({ wait: expect.any(String) });
  expect(admit(dir, 'next', limits, now + 16 * 60_000)).toEqual({ admitted: true });
});

test('every request is booked by day, submitter, repo and model, with or without limits', () => {
  const dir = home();
  const day1 = Date.parse('2026-12-06T23:59:59Z');
  const day2 = Date.parse('2026-12-07T00:00:01Z');
  settle(dir, 'r1', WHO, [], usage(0.5), day1);
  settle(dir, 'r2', WHO, [], usage(0.25), day1);
  settle(dir, 'r3', { token: 'bob', repo: 'acme' }, [], { ...usage(1), model: 'gpt-5' }, day2);
  expect(readSpendRows(dir)).toEqual([
    {
      day: '2026-12-06',
      ...WHO,
      model: 'claude-sonnet-4-5',
      requests: 2,
      inputTokens: 60,
      outputTokens: 40,
      costUsd: 0.75,
    },
    {
      day: '2026-12-07',
      token: 'bob',
      repo: 'acme',
      model: 'gpt-5',
      requests: 1,
      inputTokens: 30,
      outputTokens: 20,
      costUsd: 1,
    },
  ]);
  expect(JSON.parse(readFileSync(path.join(dir, 'spend.json'), 'utf8')).inflight).toEqual({});
});

test("a request is held to its token's, its repo's and the server's limits; a token limit counts tokens", () => {
  const dir = home();
  setBudget(dir, 'token', 'alice', limit('100tokens/day'));
  setBudget(dir, 'repo', 'acme', limit('5usd/month'));
  setBudget(dir, 'repo', 'other', limit('1usd/day'));
  const limits = limitsFor(dir, limit('200usd/day'), WHO);
  expect(limits.map((l) => `${l.scope}: ${l.limit.text}`)).toEqual([
    'token alice: 100tokens/day',
    'repo acme: 5usd/month',
    'the server: 200usd/day',
  ]);
  const now = Date.parse('2026-12-07T10:00:00Z');
  for (const id of ['1', '2']) {
    expect(admit(dir, id, limits, now)).toEqual({ admitted: true });
    settle(dir, id, WHO, limits, usage(0.01), now); // 50 tokens each
  }
  expect(admit(dir, '3', limits, now)).toMatchObject({
    refused: expect.stringContaining("token alice's budget of 100 tokens a day (used 100 tokens)"),
  });
  setBudget(dir, 'token', 'alice', undefined);
  expect(limitsFor(dir, undefined, WHO).map((l) => l.scope)).toEqual(['repo acme']);
});
