import { condition } from '@temporalio/workflow';
import type { Decision, ForgeStatus, RunStatus } from '../../contracts/run';
import type { RunContext } from './context';
import { requestedChangesFeedback } from './feedback';
import { ciFeedback, ciSummary, forgeCi } from './forgeReview';
import { notify } from './notify';
import { approvalOutcome } from './outcomes';
import { stage } from './stages';
import { humanDuration } from './time';
import { teardown } from './workspace';

/**
 * What a human's decision means for the run: go on to delivery, end it, or another iteration with this feedback
 * (`ci`: the forge's CI failed, which spends the iteration budget as a failed check does).
 */
export type Verdict = 'approved' | { ended: RunStatus } | { feedback: string; ci?: string };

/** Wait for a human's decision on the reviewed change, up to the spec's approval timeout. */
export async function awaitApproval(ctx: RunContext): Promise<Verdict> {
  const { spec, state } = ctx;
  // Nothing needs the workspace while a human decides (maybe for days): free the worker, keep the checkpoint.
  await teardown(ctx);
  const decision = await stage(
    ctx,
    'approval',
    'awaiting_approval',
    () => decided(ctx),
    (d) => (Array.isArray(d) ? [false, ciSummary(d)] : approvalOutcome(d, spec.approval.timeout)),
  );
  if (Array.isArray(decision)) return { feedback: ciFeedback(state.pushedCommit!, decision), ci: ciSummary(decision) };
  if (!decision) {
    state.failure = { stage: 'approval', reason: `no decision within ${humanDuration(spec.approval.timeout)}` };
    return { ended: 'timed_out' };
  }
  state.decisions.push(decision);
  if (decision.kind === 'reject') return { ended: 'rejected' };
  if (decision.kind === 'requestChanges') {
    // A human's request gets a fresh budget of automatic fix iterations.
    state.maxIterations = state.iteration + spec.limits.iterations;
    return { feedback: requestedChangesFeedback(decision) };
  }
  return 'approved';
}

/**
 * The decision signalled (handlers.ts) within the timeout, if any; on a forge, the failing CI statuses of the pushed
 * commit instead, should its CI fail first. An approval waits for CI still running on the pushed commit.
 */
async function decided(ctx: RunContext): Promise<Decision | ForgeStatus[] | undefined> {
  ctx.pending = undefined;
  notify(ctx, 'awaiting_approval');
  const ready = () => {
    const ci = forgeCi(ctx.state);
    return ci.failed.length > 0 || (ctx.pending !== undefined && !(ctx.pending.kind === 'approve' && ci.pending));
  };
  const inTime = await condition(ready, ctx.spec.approval.timeout);
  if (!inTime) return undefined;
  const { failed } = forgeCi(ctx.state);
  return failed.length > 0 ? failed : ctx.pending;
}
