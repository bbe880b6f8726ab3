import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';

/**
 * The worker holding the workspace stopped heartbeating, nobody polls its queue any more, or it was stopped (SIGTERM)
 * and its grace time ran out before the stage finished: Temporal's worker then fails the stage as `WorkerShutdown`.
 */
export function isWorkerLost(err: unknown): boolean {
  if (err instanceof WorkerGone) return true;
  if (!(err instanceof ActivityFailure)) return false;
  const { cause } = err;
  return (
    (cause instanceof TimeoutFailure &&
      (cause.timeoutType === 'HEARTBEAT' || cause.timeoutType === 'SCHEDULE_TO_START')) ||
    (cause instanceof ApplicationFailure && cause.type === 'WorkerShutdown')
  );
}

/** The fleet registry said the worker a step was bound for is gone: the step was given up (workspace.ts). */
export class WorkerGone extends Error {
  constructor(readonly worker: string) {
    super(`worker ${worker} stopped reporting to the fleet registry`);
    this.name = 'WorkerGone';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}
