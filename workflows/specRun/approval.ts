import { condition } from '@temporalio/workflow';
import type { Decision, RunStatus } from '../types';
import type { RunContext } from './context';
import { requestedChangesFeedback } from './feedback';
import { notify } from './notify';
import { approvalOutcome } from './outcomes';
import { stage } from './stages';
import { humanDuration } from './time';
import { teardown } from './workspace';

/** What a human's decision means for the run: go on to delivery, end it, or another iteration with this feedback. */
export type Verdict = 'approved' | { ended: RunStatus } | { feedback: string };

/** Wait for a human's decision on the reviewed change, up to the spec's approval timeout. */
export async function awaitApproval(ctx: RunContext): Promise<Verdict> {
  const { spec, state } = ctx;
  // Nothing needs the workspace while a human decides (maybe for days): free the worker, keep the checkpoint.
  await teardown(ctx);
  const decision = await stage(ctx, 'approval', 'awaiting_approval', () => decided(ctx), (d) => approvalOutcome(d, spec.approval.timeout));
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

/** The decision signalled (handlers.ts) within the timeout, if any. */
async function decided(ctx: RunContext): Promise<Decision | undefined> {
  ctx.pending = undefined;
  notify(ctx, 'awaiting_approval');
  const inTime = await condition(() => ctx.pending !== undefined, ctx.spec.approval.timeout);
  return inTime ? ctx.pending : undefined;
}
