// `nightshift spend` (GET /v1/spend) and the budgets above a run an admin sets through the API
// (`nightshift repo budget`, `nightshift token budget`): docs/budgets.md.
import type { Command } from 'commander';
import type { BudgetKind } from '../budget/limits';
import type { SpendSummary, SpendTotals } from '../budget/spendView';
import type { ApiClient } from './client';
import { table } from './format';

type Output = { print: (text: string) => void; printJson: (value: unknown, indent?: number) => void };

const usd = (amount: number) => `$${amount.toFixed(amount && amount < 0.01 ? 6 : 2)}`;
const cells = (t: SpendTotals) => [String(t.requests), String(t.inputTokens), String(t.outputTokens), usd(t.costUsd)];

/** `nightshift spend [--by token|repo|day|model] [--json]`: a line per group, then the total. */
export function registerSpendCommand(program: Command, api: ApiClient, out: Output): void {
  program
    .command('spend')
    .description("model spend the gateways metered: the token's own, or everyone's for an admin")
    .option('--by <grouping>', 'token, repo, day or model', 'day')
    .option('--json', 'print JSON')
    .action(async (opts: { by: string; json?: boolean }) => {
      const spend = await api.json<SpendSummary>('GET', `/v1/spend?by=${encodeURIComponent(opts.by)}`);
      if (opts.json) return out.printJson(spend);
      if (!spend.groups.length) return out.print('no spend yet');
      out.print(
        table([
          [spend.by.toUpperCase(), 'REQUESTS', 'TOKENS IN', 'TOKENS OUT', 'COST'],
          ...spend.groups.map((g) => [g.key, ...cells(g)]),
          ['total', ...cells(spend.total)],
        ]),
      );
    });
}

/** `nightshift repo|token budget NAME <budget|none>`: PUT /v1/budgets/KIND/NAME (admin). */
export function addBudgetCommand(parent: Command, kind: BudgetKind, api: ApiClient, out: Output): void {
  parent
    .command('budget <name> <budget>')
    .description(`set the ${kind}'s model budget above its runs (20usd/day, 1mtokens/month), or remove it with none`)
    .option('--json', 'print JSON')
    .action(async (name: string, budget: string, opts: { json?: boolean }) => {
      const body = { budget: budget === 'none' ? null : budget };
      const res = await api.json<{ budget: string | null; runsSignalled: number }>(
        'PUT',
        `/v1/budgets/${kind}/${encodeURIComponent(name)}`,
        body,
      );
      if (opts.json) return out.printJson(res, 0);
      const woken = res.runsSignalled ? `; ${res.runsSignalled} runs awaiting budget told` : '';
      out.print(`${kind} ${name}: ${res.budget ? `budget ${res.budget}` : 'no budget'}${woken}`);
    });
}
