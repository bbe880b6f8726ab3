// A run whose model budget is spent asks for more instead of failing (`limits.onExceed: ask`, docs/budgets.md): its
// iteration ended with the branch checkpointed; the workspace is freed while a person decides (maybe for days).
import { condition } from '@temporalio/workflow';
import type { BudgetRaise, Decision, RunStatus } from '../../contracts/run';
import type { RunContext } from './context';
import { notify } from './notify';
import { stage } from './stages';
import { humanDuration } from './time';
import { teardown } from './workspace';

/** Whether the run asks for more budget when it is spent (runs submitted before `onExceed` fail, as they did). */
export function asksForBudget(ctx: RunContext): boolean {
  return ctx.spec.limits.onExceed === 'ask';
}

/**
 * Wait, up to the approval timeout, for a person to raise the spent budget (`stoppedBy`: the gateway's refusal): the
 * feedback for the agent's next iteration, or how the run ended (rejected, timed out).
 */
export async function awaitBudget(
  ctx: RunContext,
  stoppedBy: string,
): Promise<{ ended: RunStatus } | { feedback: string }> {
  const { spec, state } = ctx;
  await teardown(ctx);
  state.budget = { stoppedBy, limits: { tokens: spec.limits.tokens, costUsd: spec.limits.costUsd } };
  const decision = await stage(
    ctx,
    'budget',
    'awaiting_budget',
    () => raised(ctx),
    (d) => [
      d?.kind === 'raiseBudget',
      d
        ? `${d.kind} by ${d.by}${d.raise ? ` (${raiseText(d.raise)})` : ''}`
        : `no decision within ${humanDuration(spec.approval.timeout)}`,
    ],
  );
  if (!decision) {
    state.failure = {
      stage: 'budget',
      reason: `budget spent (${stoppedBy}); no decision within ${humanDuration(spec.approval.timeout)}`,
    };
    return { ended: 'timed_out' };
  }
  state.decisions.push(decision);
  if (decision.kind !== 'raiseBudget' || !decision.raise) return { ended: 'rejected' };
  const { tokens, costUsd } = decision.raise;
  // The gateway of the next iteration enforces the raised limits (activities get them from the spec).
  spec.limits = {
    ...spec.limits,
    ...(tokens ? { tokens: (spec.limits.tokens ?? 0) + tokens } : {}),
    ...(costUsd ? { costUsd: (spec.limits.costUsd ?? 0) + costUsd } : {}),
  };
  state.budget.limits = { tokens: spec.limits.tokens, costUsd: spec.limits.costUsd };
  // The stopped iteration was the budget's doing, not the agent's: it does not count against the iterations.
  state.maxIterations++;
  return { feedback: budgetFeedback(stoppedBy, decision) };
}

async function raised(ctx: RunContext): Promise<Decision | undefined> {
  ctx.pending = undefined;
  notify(ctx, 'awaiting_budget');
  const inTime = await condition(() => ctx.pending !== undefined, ctx.spec.approval.timeout);
  return inTime ? ctx.pending : undefined;
}

function raiseText(r: BudgetRaise): string {
  return [r.costUsd ? `+$${r.costUsd}` : '', r.tokens ? `+${r.tokens} tokens` : ''].filter(Boolean).join(', ');
}

/** What the agent's next iteration is told: it was stopped by the budget, not by a problem, and goes on. */
function budgetFeedback(stoppedBy: string, d: Decision): string {
  return [
    `Your last iteration was stopped by the run's model budget, not by a problem in your work: ${stoppedBy}.`,
    `${d.by} raised the budget (${raiseText(d.raise!)})${d.comment ? `: ${d.comment}` : ''}.`,
    'What you had done so far is in the workspace (your branch, as checkpointed when you were stopped): go on from there.',
  ].join('\n');
}
