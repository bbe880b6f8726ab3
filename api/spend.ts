// The spend view and the limits above a run (docs/budgets.md): GET /v1/spend for every token (its own spend; an admin's
// everyone's), and the token and repo budgets for admins, whose change wakes the runs waiting for a limit.
import type { Client } from '@temporalio/client';
import { Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { readSpendRows } from '../budget/ledger';
import { parseBudget } from '../spec/budget';
import { BUDGET_KINDS, readBudgets, setBudget, type BudgetKind } from '../budget/limits';
import { summarizeSpend } from '../budget/spendView';
import type { Config } from '../config';
import { RemoteRepos } from '../config/remotes';
import { SPEND_GROUPINGS, type SpendGrouping } from '../contracts/spend';
import { budgetLimitsChangedSignal } from '../workflows/messages';
import { SPEC_RUN_WORKFLOW } from '../workflows/names';
import { principalOf, requireRole } from './auth';
import { ApiError } from './errors';
import { localRepos } from './repoRoutes';
import { jsonBodyOf } from './runs';
import type { TokenStore } from './tokens';

export const BudgetsListingSchema = z.object({
  token: z.record(z.string(), z.string()).describe("Each token's budget, as 20usd/day"),
  repo: z.record(z.string(), z.string()).describe("Each repo's budget"),
  server: z.string().nullable().describe('NIGHTSHIFT_BUDGET: the limit on all runs together'),
});

export const BudgetBodySchema = z.strictObject({
  budget: z
    .string()
    .nullable()
    .describe('An amount per window (20usd/day, 1mtokens/month, 0.5usd/30s); null removes it'),
});

export const BudgetChangedSchema = z.object({
  kind: z.enum(BUDGET_KINDS),
  name: z.string(),
  budget: z.string().nullable(),
  runsSignalled: z.number().int().describe('Runs awaiting_budget told to try again'),
});

/** GET /v1/spend?by=token|repo|day|model: an admin sees every row; any other token only the spend it submitted. */
export function spendRouter(config: Config): Router {
  const router = Router();
  router.get('/', requireRole('viewer'), (req, res) => {
    const by = req.query.by === undefined ? 'day' : req.query.by;
    if (typeof by !== 'string' || !(SPEND_GROUPINGS as readonly string[]).includes(by))
      throw new ApiError('bad_request', `by must be one of ${SPEND_GROUPINGS.join(', ')}`);
    const principal = principalOf(req);
    const rows = readSpendRows(config.home).filter((r) => principal.role === 'admin' || r.token === principal.name);
    res.json(summarizeSpend(rows, by as SpendGrouping));
  });
  return router;
}

export interface BudgetsDeps {
  client: Client;
  config: Config;
  tokens: TokenStore;
  logger: Logger;
}

/** GET /v1/budgets and PUT /v1/budgets/:kind/:name (admin): the token and repo budgets in budgets.json. */
export function budgetsRouter({ client, config, tokens, logger }: BudgetsDeps): Router {
  const router = Router();
  router.get('/', requireRole('admin'), (_req, res) => {
    res.json({ ...readBudgets(config.home), server: config.serverBudget?.text ?? null });
  });

  router.put('/:kind/:name', requireRole('admin'), async (req, res) => {
    const kind = String(req.params.kind);
    const name = String(req.params.name);
    if (!(BUDGET_KINDS as readonly string[]).includes(kind))
      throw new ApiError('not_found', `no budgets of kind ${JSON.stringify(kind.slice(0, 40))}: token or repo`);
    const text = jsonBodyOf(req, BudgetBodySchema, '{"budget": "20usd/day"}, or {"budget": null} to remove it').budget;
    const limit = text === null ? undefined : parseBudget(text);
    if (limit && 'error' in limit) throw new ApiError('bad_request', `budget: ${limit.error}`);
    // A budget left behind by a repo or token that is gone may still be removed.
    const removingKnown = !limit && Object.hasOwn(readBudgets(config.home)[kind as BudgetKind], name);
    if (!removingKnown && !knownNames(kind as BudgetKind, config, tokens).includes(name))
      throw new ApiError('not_found', `no ${kind} named ${JSON.stringify(name.slice(0, 100))}`);
    setBudget(config.home, kind as BudgetKind, name, limit);
    const runsSignalled = await signalWaitingRuns(client, config, logger);
    res.json({ kind, name, budget: limit?.text ?? null, runsSignalled });
  });
  return router;
}

/** Names a budget may be set for: the tokens in tokens.json, or the repos GET /v1/repos lists. */
function knownNames(kind: BudgetKind, config: Config, tokens: TokenStore): string[] {
  if (kind === 'token') return tokens.list().map((t) => t.name);
  const remotes = new RemoteRepos(config.home, config.reposDir).list().map((r) => r.name);
  return [...remotes, ...localRepos(config.reposDir).map((r) => r.name)];
}

/**
 * Tells this server's runs (its task queue's: those its ledger books) awaiting_budget that a limit changed, so one
 * stopped by a limit now raised goes on. A run that cannot be told (it just ended) is logged, not a failure: the budget
 * is changed either way. Answers how many were told.
 */
async function signalWaitingRuns(client: Client, config: Config, logger: Logger): Promise<number> {
  const query = [
    `WorkflowType = '${SPEC_RUN_WORKFLOW}'`,
    `TaskQueue = '${config.taskQueue}'`,
    `ExecutionStatus = 'Running'`,
    `NightshiftStatus = 'awaiting_budget'`,
  ].join(' AND ');
  const ids: string[] = [];
  try {
    for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
  } catch (err) {
    logger.warn({ err }, 'budgets changed, but the runs awaiting budget could not be listed');
    return 0;
  }
  const sent = await Promise.allSettled(
    ids.map((id) => client.workflow.getHandle(id).signal(budgetLimitsChangedSignal)),
  );
  sent.forEach((s, i) => {
    if (s.status === 'rejected') logger.warn({ err: s.reason, run: ids[i] }, 'could not signal budgetLimitsChanged');
  });
  return sent.filter((s) => s.status === 'fulfilled').length;
}
