import { ApplicationFailure } from '@temporalio/activity';
import { ForgeError } from './forge';

/**
 * A forge's answer as the activity's failure: what a retry cannot fix (bad token, no such repo, a refusal) is final.
 */
export function forgeFailure(err: unknown, types: { unavailable: string; refused: string }): unknown {
  if (!(err instanceof ForgeError)) return err;
  return err.retryable
    ? ApplicationFailure.retryable(err.message, types.unavailable)
    : ApplicationFailure.nonRetryable(err.message, types.refused);
}
