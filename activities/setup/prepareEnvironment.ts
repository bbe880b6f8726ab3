import type { ActivityDeps } from '../../runtime/deps';
import { withHeartbeat } from '../../runtime/heartbeat';
import { openSandbox, runRepo } from '../../workspaces/sandboxes';
import type { SetupStageInput, SetupStageResult } from '../../contracts/setup';
import { provideEnvironment } from '../../workspaces/environments';

// The setup stage (docs/environments.md): the spec's setup commands run once, on a checkout of the base, with their
// own network; what they leave (node_modules, a virtualenv, the home's caches) becomes a read-only cache entry that
// every sandbox of the run (and of later runs with the same key) sees through a copy-on-write overlay.

export function environmentActivities(deps: ActivityDeps) {
  return {
    /**
     * The setup stage: the run's environment made (or found) and seen in its sandbox, before the agent's first
     * iteration.
     */
    async prepareEnvironment(input: SetupStageInput): Promise<SetupStageResult> {
      return withHeartbeat(async () => {
        const sandbox = await openSandbox(deps, input.runId, input.sandbox);
        const got = await provideEnvironment(
          deps,
          input.runId,
          sandbox,
          runRepo(deps, sandbox),
          input.sandbox,
          input.environment,
        );
        return 'failed' in got ? got : { environment: got.view };
      });
    },
  };
}
