import { summarizeSpend } from '../../budget/spendView';
import type { SpendRow } from '../../contracts/spend';

const row = (model: string, day: string, costUsd: number): SpendRow => ({
  day,
  token: 'alice',
  repo: 'billing',
  model,
  requests: 1,
  inputTokens: 10,
  outputTokens: 2,
  costUsd,
});

// Model names come from upstream responses: one named like a prototype property is a model like any other.
test('a model named __proto__ or constructor is a key of its own, and no prototype changes', () => {
  const summary = summarizeSpend(
    [row('__proto__', '2026-01-02', 1), row('constructor', '2026-01-01', 2), row('__proto__', '2026-01-01', 4)],
    'day',
  );
  expect(summary.groups.map((g) => g.key)).toEqual(['2026-01-01', '2026-01-02']);
  expect(Object.keys(summary.total.models).sort()).toEqual(['__proto__', 'constructor']);
  expect(Object.hasOwn(summary.total.models, '__proto__')).toBe(true);
  expect(JSON.parse(JSON.stringify(summary.total.models))).toEqual(
    JSON.parse(
      '{"__proto__": {"requests": 2, "inputTokens": 20, "outputTokens": 4, "costUsd": 5}, "constructor": {"requests": 1, "inputTokens": 10, "outputTokens": 2, "costUsd": 2}}',
    ),
  );
  expect(summary.groups[0]).toMatchObject({ requests: 2, costUsd: 6 });
  expect(({} as Record<string, unknown>).requests).toBeUndefined();
});

test('no rows: no groups, a zero total', () => {
  expect(summarizeSpend([], 'model')).toEqual({
    by: 'model',
    groups: [],
    total: { requests: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, models: {} },
  });
});
