import { Context } from '@temporalio/activity';

/**
 * Heartbeat every few seconds while `work` runs: the server notices a dead worker only through missed heartbeats,
 * and cancellation reaches only activities that heartbeat.
 */
export async function withHeartbeat<T>(work: () => Promise<T>, everyMs = 1000): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat();
  const timer = setInterval(() => ctx.heartbeat(), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** After a cancelled stage, report the activity as cancelled (the SDK's CancelledFailure), not as failed. */
export function throwIfCancelled(): void {
  const signal = Context.current().cancellationSignal;
  if (signal.aborted) throw signal.reason;
}
