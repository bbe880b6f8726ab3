// Model spend as the gateways metered it, across runs: the ledger's rows (budget/ledger.ts) and the spend view's
// answer (GET /v1/spend, docs/budgets.md).
import { z } from 'zod';

/** One model's usage for one submitter on one repo on one UTC day: the ledger's unit of account. */
export const SpendRowSchema = z.strictObject({
  /** UTC day, YYYY-MM-DD. */
  day: z.string(),
  /** Who submitted the run: a token name, `schedule:<id>`, or `<forge>:<user>`. */
  token: z.string(),
  repo: z.string(),
  /** The model the responses named, or the spec's `agent.model` when they named none; `unknown` when neither did. */
  model: z.string(),
  requests: z.number().int().nonnegative(),
  inputTokens: z.number().nonnegative(),
  outputTokens: z.number().nonnegative(),
  costUsd: z.number().nonnegative(),
});
export type SpendRow = z.infer<typeof SpendRowSchema>;

export const SPEND_GROUPINGS = ['token', 'repo', 'day', 'model'] as const;
export type SpendGrouping = (typeof SPEND_GROUPINGS)[number];

/** Who is spending: the run's submitter and repo, as the ledger books its requests. */
export interface Spender {
  token: string;
  repo: string;
}
