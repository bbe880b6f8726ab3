// The pipeline of one spec. The workflow, not the agent, decides which stage runs next:
// provision → agent → scope → checks → review → (fix loop) → approval → rebase → proof → deliver, with teardown always.
// The parts share one RunContext (context.ts); activity proxies per task queue are in proxies.ts.
import { ApplicationFailure, isCancellation } from '@temporalio/workflow';
import type { RunInput, RunState, RunStatus } from '../../contracts/run';
import { createContext } from './context';
import { errorMessage } from './errors';
import { registerHandlers } from './handlers';
import { notify } from './notify';
import { pipeline } from './pipeline';
import { setStatus } from './stages';
import { teardown } from './workspace';

export async function specRun(input: RunInput): Promise<RunState> {
  const ctx = createContext(input);
  registerHandlers(ctx);
  const { state } = ctx;

  // The final status is set only once the sandbox is gone, so "ended" always means "cleaned up".
  let final: RunStatus;
  let error: unknown;
  try {
    final = await pipeline(ctx);
  } catch (err) {
    error = err;
    final = isCancellation(err) ? 'cancelled' : 'failed';
    state.failure ??= {
      stage: state.stage ?? 'provision',
      reason: final === 'cancelled' ? 'cancelled' : errorMessage(err),
    };
  }
  await teardown(ctx);
  setStatus(ctx, final);
  if (final === 'succeeded' || final === 'failed') notify(ctx, final);
  // The status is final already; the workflow stays open until the webhooks have heard (or their retries are spent).
  await Promise.all(ctx.notifications);
  if (final === 'cancelled') throw error;
  if (final === 'failed')
    throw ApplicationFailure.nonRetryable(`${state.failure!.stage}: ${state.failure!.reason}`, 'RunFailed', state);
  return state;
}
