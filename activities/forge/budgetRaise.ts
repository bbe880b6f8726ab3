import type { RemoteRepo } from '../../config/remotes';
import type { ForgeAction, ForgeEvent } from '../../contracts/forge';
import { BUDGET_COMMENT_SYNTAX, readBudgetComment } from '../../forges/budgetComment';
import { signDecision } from '../../proof/decisions';
import { ensureSigningKey } from '../../proof/keys';

/**
 * A `/nightshift budget …` comment on the pull request of `run` (awaiting budget): by one of the repo's approvers, a
 * raise signed as the API signs one (the run, the iteration, who, the comment and the amounts) and its channel; a
 * comment whose amounts cannot be read is answered on the pull request with the syntax, and raises nothing.
 */
export function budgetRaise(
  home: string,
  remote: RemoteRepo,
  event: Extract<ForgeEvent, { kind: 'budget' }>,
  run: { id: string; iteration: number },
): ForgeAction {
  if (!remote.approvers.includes(event.user))
    return { ignored: `${event.user} may not raise the budget (not among the approvers of this repo)` };
  const read = readBudgetComment(event.text);
  if ('error' in read)
    return {
      ignored: `no budget raise: ${read.error}`,
      tell: {
        issue: event.pr,
        body: `Nightshift raised nothing for run \`${run.id}\`: ${read.error}. Write ${BUDGET_COMMENT_SYNTAX}.`,
      },
    };
  const by = `${remote.forge}:${event.user}`;
  const { raise, comment } = read;
  const sig = signDecision(ensureSigningKey(home), run.id, {
    kind: 'raiseBudget',
    by,
    comment,
    iteration: run.iteration,
    via: 'forge',
    raise,
  });
  return { raise: { runId: run.id, decision: { comment, by, sig, via: 'forge', ...raise } } };
}
