import { DEFAULT_SANDBOX, type Spec } from '../../spec/schema';
import type { ActivityDeps } from '../../runtime/deps';
import { withHeartbeat } from '../../runtime/heartbeat';
import { openSandbox } from '../../workspaces/sandboxes';

/** Kill whatever still runs in the run's sandbox and delete it. */
export function teardownWorkspace(deps: ActivityDeps) {
  return async (input: { runId: string; sandbox?: Spec['sandbox'] }): Promise<void> => {
    // Heartbeating like every workspace activity: a container's removal may outlast the short heartbeat timeout.
    return withHeartbeat(async () => {
      // Runs started before the sandbox was passed here used the default driver. No toolchains: a removal needs none,
      // and one this worker does not offer must not keep it from removing the sandbox.
      const sandbox = await openSandbox(deps, input.runId, { ...(input.sandbox ?? DEFAULT_SANDBOX), toolchains: [] });
      await sandbox.teardown();
      deps.slots.release(input.runId);
      await deps.runLog.append(input.runId, `\n=== teardown: sandbox removed from ${deps.self.worker} ===\n`);
    });
  };
}
