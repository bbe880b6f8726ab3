import type { ActivityDeps } from '../../runtime/deps';
import type { RunEvent } from '../../contracts/notify';

/** A notice that the retries could not deliver: the run goes on, and its log says so. */
export function logFailedNotification(deps: ActivityDeps) {
  return async (input: { runId: string; event: RunEvent; reason: string }): Promise<void> => {
    await deps.runLog.append(
      input.runId,
      `\n=== notify: the ${input.event} notification failed after its retries: ${input.reason} ===\n`,
    );
  };
}
