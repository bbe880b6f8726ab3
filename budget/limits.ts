// Which limits above a run apply to a request: its submitter's (`nightshift token add NAME --budget 20usd/day`), its
// repo's (`nightshift repo budget NAME 100usd/month`), and the server's (NIGHTSHIFT_BUDGET). Token and repo budgets
// live in `$NIGHTSHIFT_HOME/budgets.json`, read fresh at each agent exec, so a raise applies to the next one.
import * as path from 'node:path';
import { z } from 'zod';
import { readJson, withLock, writeAtomic } from '../config/jsonFile';
import type { Spender } from '../contracts/spend';
import type { ScopedLimit } from './ledger';
import { parseBudget, type BudgetLimit } from '../spec/budget';

export const BUDGET_KINDS = ['token', 'repo'] as const;
export type BudgetKind = (typeof BUDGET_KINDS)[number];

const BudgetText = z.string().refine((t) => !('error' in parseBudget(t)), 'is not a budget');
const BudgetsSchema = z.strictObject({
  token: z.record(z.string(), BudgetText),
  repo: z.record(z.string(), BudgetText),
});
export type Budgets = z.infer<typeof BudgetsSchema>;

const budgetsFile = (home: string) => path.join(home, 'budgets.json');

export function readBudgets(home: string): Budgets {
  return readJson(budgetsFile(home), BudgetsSchema, { token: {}, repo: {} });
}

/** Sets (or, with undefined, removes) the budget of a token or repo; the text must parse (callers check first). */
export function setBudget(home: string, kind: BudgetKind, name: string, budget: BudgetLimit | undefined): void {
  const file = budgetsFile(home);
  withLock(file, () => {
    const budgets = readBudgets(home);
    if (budget) budgets[kind][name] = budget.text;
    else delete budgets[kind][name];
    writeAtomic(file, budgets);
  });
}

const limitOf = (text: string): BudgetLimit => parseBudget(text) as BudgetLimit;

/** The limits a request of `who` is held to, server-wide last. */
export function limitsFor(home: string, serverBudget: BudgetLimit | undefined, who: Spender): ScopedLimit[] {
  const budgets = readBudgets(home);
  const token = budgets.token[who.token];
  const repo = budgets.repo[who.repo];
  return [
    ...(token ? [{ scope: `token ${who.token}`, limit: limitOf(token) }] : []),
    ...(repo ? [{ scope: `repo ${who.repo}`, limit: limitOf(repo) }] : []),
    ...(serverBudget ? [{ scope: 'the server', limit: serverBudget }] : []),
  ];
}
