// The spend view (GET /v1/spend, `nightshift spend`, the web page's Spend section): ledger rows summed per token,
// repo, UTC day or model, each group with its per-model share.
import { z } from 'zod';
import { SPEND_GROUPINGS, type SpendGrouping, type SpendRow } from '../contracts/spend';

/** Usage summed over ledger rows. */
export const SpendTotalsSchema = z.object({
  requests: z.number().int().nonnegative(),
  inputTokens: z.number().nonnegative(),
  outputTokens: z.number().nonnegative(),
  costUsd: z.number().nonnegative(),
});
export type SpendTotals = z.infer<typeof SpendTotalsSchema>;

/** Totals with each model's share. */
const SpendGroupTotalsSchema = SpendTotalsSchema.extend({
  models: z.record(z.string(), SpendTotalsSchema).describe('The same sums per model'),
});

/** `GET /v1/spend?by=…`: the rows the token may see, summed per key of the grouping, and over all of them. */
export const SpendSummarySchema = z.object({
  by: z.enum(SPEND_GROUPINGS),
  groups: z
    .array(SpendGroupTotalsSchema.extend({ key: z.string().describe('The token, repo, UTC day or model') }))
    .describe('Sorted by key'),
  total: SpendGroupTotalsSchema,
});
export type SpendSummary = z.infer<typeof SpendSummarySchema>;

const emptyTotals = (): SpendTotals => ({ requests: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 });

function add(into: SpendTotals, row: SpendRow): void {
  into.requests += row.requests;
  into.inputTokens += row.inputTokens;
  into.outputTokens += row.outputTokens;
  into.costUsd += row.costUsd;
}

/** The rows' sums and each model's; a record made from entries, so no model name (`__proto__`) reaches a prototype. */
function withModels(rows: readonly SpendRow[]): SpendSummary['total'] {
  const totals = emptyTotals();
  for (const row of rows) add(totals, row);
  return { ...totals, models: Object.fromEntries(totalsByModel(rows)) };
}

/** `rows` summed by `by`, groups sorted by key, and the total over all of them. */
export function summarizeSpend(rows: readonly SpendRow[], by: SpendGrouping): SpendSummary {
  const groups = new Map<string, SpendRow[]>();
  for (const row of rows) {
    const group = groups.get(row[by]);
    if (group) group.push(row);
    else groups.set(row[by], [row]);
  }
  return {
    by,
    groups: [...groups]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, ofKey]) => ({ key, ...withModels(ofKey) })),
    total: withModels(rows),
  };
}

/** Each model's input and output tokens and cost over `rows` (the metrics' counters). */
export function totalsByModel(rows: readonly SpendRow[]): Map<string, SpendTotals> {
  const models = new Map<string, SpendTotals>();
  for (const row of rows) {
    let totals = models.get(row.model);
    if (!totals) models.set(row.model, (totals = emptyTotals()));
    add(totals, row);
  }
  return models;
}
