import { ApplicationFailure, Context } from '@temporalio/activity';
import type { WorkspaceRef } from '../../contracts/run';
import type { ActivityDeps } from '../../runtime/deps';

/** How long a worker whose slot was taken meanwhile holds a claim, hoping one frees up, before handing it back. */
const CLAIM_HOLD_MS = 2_000;

/**
 * Runs on the queue of the run's sandbox driver, which only workers offering it poll, and only with a slot free
 * (sandbox/claimSlotSupplier.ts): the worker that picks it up offers its own queue for the run's workspace. Should
 * the slot be gone by then, it holds the claim a moment (a slot may free up), then hands it back to the queue (a
 * retryable failure), so a claim never waits on one busy worker while another has room.
 * Without input: a run that claimed before slots existed (an old history), on the shared queue.
 */
export function claimWorkspace(deps: ActivityDeps) {
  return async (input?: { runId: string }): Promise<WorkspaceRef> => {
    if (!input) return deps.self;
    const ctx = Context.current();
    let taken = false;
    try {
      for (const until = Date.now() + CLAIM_HOLD_MS; !(taken = deps.slots.tryTake(input.runId));) {
        if (Date.now() > until)
          throw ApplicationFailure.retryable(
            `worker ${deps.self.worker} is full (${deps.slots.load}/${deps.slots.capacity} sandboxes)`,
            'WorkerFull',
          );
        ctx.heartbeat();
        await ctx.sleep(200);
      }
    } finally {
      if (!taken) deps.slots.stopWaiting(input.runId);
    }
    return deps.self;
  };
}
