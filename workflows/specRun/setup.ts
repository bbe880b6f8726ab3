// The setup stage: the spec's setup commands make the run's environment (or it comes from the cache) before the
// agent's first iteration; the agent and the checks then run offline with it (docs/environments.md).
import type { RunContext } from './context';
import { setupInput } from './inputs';
import { fail, stage } from './stages';
import { MINUTE } from './time';
import { inWorkspace } from './workspace';

export async function setupEnvironment(ctx: RunContext): Promise<void> {
  const { state, sandboxMs } = ctx;
  const result = await stage(
    ctx,
    'setup',
    'provisioning',
    () => inWorkspace(ctx, sandboxMs + 5 * MINUTE, 'setup', (a) => a.prepareEnvironment(setupInput(ctx))),
    (r) =>
      'failed' in r
        ? [false, r.failed]
        : [
            true,
            `environment ${r.environment.source === 'built' ? 'made' : `from the ${r.environment.source === 'worker' ? "worker's cache" : 'artifact store'}`} in ${r.environment.readyMs} ms`,
          ],
  );
  if ('failed' in result) {
    state.setupLogId = result.logId;
    // Not the agent's fault, and no iteration spent: the repo's setup does not work.
    fail(ctx, 'setup', result.failed);
  }
  state.environment = result.environment;
}
