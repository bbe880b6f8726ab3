import { Context } from '@temporalio/activity';

/**
 * Heartbeat every second while `work` runs (the worker sends them on at most that often: workers/worker.ts): the server
 * notices a dead worker only through missed heartbeats, and cancellation reaches only activities that heartbeat.
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

/**
 * The same activities, each heartbeating while it runs: a worker that dies holding one is then noticed within the
 * caller's heartbeat timeout, not its whole start-to-close time (the shared queue's activities are short, but any of
 * them may be in flight on a worker that is killed).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any activity's arguments and result pass through
export function heartbeating<T extends Record<string, (...args: any[]) => Promise<unknown>>>(activities: T): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [name, (...args: unknown[]) => withHeartbeat(() => fn(...args))]),
  ) as T;
}
