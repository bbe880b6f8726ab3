import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';

/**
 * The worker holding the workspace stopped heartbeating, nobody polls its queue any more, or it was stopped (SIGTERM)
 * and its grace time ran out before the stage finished: Temporal's worker then fails the stage as `WorkerShutdown`.
 */
export function isWorkerLost(err: unknown): boolean {
  if (!(err instanceof ActivityFailure)) return false;
  const { cause } = err;
  return (
    (cause instanceof TimeoutFailure &&
      (cause.timeoutType === 'HEARTBEAT' || cause.timeoutType === 'SCHEDULE_TO_START')) ||
    (cause instanceof ApplicationFailure && cause.type === 'WorkerShutdown')
  );
}

export function errorMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}
