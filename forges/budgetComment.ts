// `/nightshift budget +5usd [+100ktokens] [why]`, a comment on a run's pull request: what it adds to the run's spent
// model budget (docs/budgets.md), read as `nightshift budget` reads its amounts.
import { parseAmount } from '../spec/budget';
import type { BudgetRaise } from '../contracts/run';

/** What a person is told on the forge when the comment's amounts cannot be read. */
export const BUDGET_COMMENT_SYNTAX =
  '`/nightshift budget +5` (dollars; also `+5usd` or `+$5`), `/nightshift budget +100ktokens` (or `+100000tokens`, ' +
  '`+2mtokens`), or both, as `/nightshift budget +5usd +100ktokens`; any text after the amounts is the comment';

// As the API's POST /v1/runs/:id/budget allows.
const MAX = { costUsd: 100_000, tokens: 1e9 };

/**
 * The amounts at the head of `text` (what follows `budget`), added up, and the rest as the comment. Every leading word
 * that starts like an amount (`+`, `$` or a digit) must be one; a bare number is dollars.
 */
export function readBudgetComment(text: string): { raise: BudgetRaise; comment: string } | { error: string } {
  const raise: BudgetRaise = {};
  let rest = text.trim();
  for (let word = /^[+$\d]\S*/.exec(rest)?.[0]; word; word = /^[+$\d]\S*/.exec(rest)?.[0]) {
    const amount = parseAmount(/^\+?\d+(\.\d+)?$/.test(word) ? `${word}usd` : word);
    if (!amount) return { error: `"${word.slice(0, 40)}" is not an amount` };
    const field = amount.unit === 'usd' ? 'costUsd' : 'tokens';
    const total = (raise[field] ?? 0) + amount.amount;
    if (total > MAX[field]) return { error: `${field} is at most ${MAX[field]}` };
    raise[field] = total;
    rest = rest.slice(word.length).trimStart();
  }
  if (raise.costUsd === undefined && raise.tokens === undefined) return { error: 'no amount to add' };
  return { raise, comment: rest };
}
