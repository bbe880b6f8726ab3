// A run whose model budget is spent asks for more instead of failing (`limits.onExceed: ask`, docs/budgets.md): its
// iteration ended with the branch checkpointed; the workspace is freed while it waits (maybe for days). Its own
// budget waits for a person to raise it; a limit above the run (a token's, a repo's, the server's) waits for its
// window to roll over or an admin to change it, and goes on by itself.
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

/** How a wait for budget ended: a person's decision, or a limit above the run that has room again. */
type BudgetWait = { decision?: Decision; freed?: 'rolled over' | 'changed by an admin' };

/**
 * Wait for the spent budget (`stoppedBy`: the gateway's refusal; `until`: set when it was a limit above the run):
 * the feedback for the agent's next iteration, or how the run ended (rejected, timed out).
 */
export async function awaitBudget(
  ctx: RunContext,
  stoppedBy: string,
  until?: number,
): Promise<{ ended: RunStatus } | { feedback: string }> {
  const { spec, state } = ctx;
  await teardown(ctx);
  state.budget = {
    stoppedBy,
    limits: { tokens: spec.limits.tokens, costUsd: spec.limits.costUsd },
    ...(until !== undefined ? { until: new Date(until).toISOString() } : {}),
  };
  const waited = await stage(
    ctx,
    'budget',
    'awaiting_budget',
    () => (until === undefined ? raised(ctx) : windowFreed(ctx, until)),
    ({ decision: d, freed }) => [
      d?.kind === 'raiseBudget' || Boolean(freed),
      d
        ? `${d.kind} by ${d.by}${d.raise ? ` (${raiseText(d.raise)})` : ''}`
        : (freed ?? `no decision within ${humanDuration(spec.approval.timeout)}`),
    ],
  );
  const { decision, freed } = waited;
  if (!decision && !freed) {
    state.failure = {
      stage: 'budget',
      reason: `budget spent (${stoppedBy}); no decision within ${humanDuration(spec.approval.timeout)}`,
    };
    return { ended: 'timed_out' };
  }
  if (decision) {
    state.decisions.push(decision);
    if (decision.kind !== 'raiseBudget' || !decision.raise) return { ended: 'rejected' };
    raiseLimits(ctx, decision.raise);
  }
  // The stopped iteration was the budget's doing, not the agent's: it does not count against the iterations.
  state.maxIterations++;
  const why = decision ? raisedBy(decision) : `That limit has ${freed}.`;
  return { feedback: budgetFeedback(until === undefined ? "the run's" : 'a', stoppedBy, why) };
}

/** The gateway of the next iteration enforces the raised limits (activities get them from the spec). */
function raiseLimits(ctx: RunContext, { tokens, costUsd }: BudgetRaise): void {
  const { spec, state } = ctx;
  spec.limits = {
    ...spec.limits,
    ...(tokens ? { tokens: (spec.limits.tokens ?? 0) + tokens } : {}),
    ...(costUsd ? { costUsd: (spec.limits.costUsd ?? 0) + costUsd } : {}),
  };
  state.budget!.limits = { tokens: spec.limits.tokens, costUsd: spec.limits.costUsd };
}

/** The run's own budget: a person raises it (or rejects), within the approval timeout. */
async function raised(ctx: RunContext): Promise<BudgetWait> {
  ctx.pending = undefined;
  notify(ctx, 'awaiting_budget');
  const inTime = await condition(() => ctx.pending !== undefined, ctx.spec.approval.timeout);
  return inTime ? { decision: ctx.pending } : {};
}

/**
 * A limit above the run: its window rolls over at `until`, or an admin changes a limit first. A person may still
 * reject the run, or raise its own budget, meanwhile.
 */
async function windowFreed(ctx: RunContext, until: number): Promise<BudgetWait> {
  ctx.pending = undefined;
  ctx.limitsChanged = false;
  notify(ctx, 'awaiting_budget');
  // A second past the window's end, so the ledger (on the workers' clocks) is in the new window too.
  const woken = await condition(
    () => ctx.pending !== undefined || ctx.limitsChanged === true,
    Math.max(until - Date.now(), 0) + 1000,
  );
  if (ctx.pending) return { decision: ctx.pending };
  return { freed: woken ? 'changed by an admin' : 'rolled over' };
}

function raiseText(r: BudgetRaise): string {
  return [r.costUsd ? `+$${r.costUsd}` : '', r.tokens ? `+${r.tokens} tokens` : ''].filter(Boolean).join(', ');
}

function raisedBy(d: Decision): string {
  return `${d.by} raised the budget (${raiseText(d.raise!)})${d.comment ? `: ${d.comment}` : ''}.`;
}

/** What the agent's next iteration is told: it was stopped by the budget, not by a problem, and goes on. */
function budgetFeedback(whose: string, stoppedBy: string, why: string): string {
  return [
    `Your last iteration was stopped by ${whose} model budget, not by a problem in your work: ${stoppedBy}.`,
    why,
    'What you had done so far is in the workspace (your branch, as checkpointed when you were stopped): go on from there.',
  ].join('\n');
}
