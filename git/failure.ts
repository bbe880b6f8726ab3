import { ApplicationFailure } from '@temporalio/activity';
import { GitError } from './git';

export interface GitFailure {
  /** The activity failure's type, which the workflow (and the run's state) tells failures apart by. */
  type: string;
  /** What could not be done, before git's own reason; without it, git's message alone. */
  what?: string;
  /** A failure worth another attempt (a remote out of reach), rather than one that ends the run. */
  retryable?: boolean;
  /** When git found the repo locked by another git: what to say in a retryable `RepoBusy` failure instead. */
  busy?: string;
}

/**
 * The activity failure a failed git is reported as, with git's reason; any other error is returned as it is.
 * For `catch (err) { throw gitFailure(err, …) }`.
 */
export function gitFailure(err: unknown, failure: GitFailure): unknown {
  if (!(err instanceof GitError)) return err;
  if (failure.busy !== undefined && err.repoBusy)
    return ApplicationFailure.retryable(`${failure.busy}: ${err.message}`, 'RepoBusy');
  const message = failure.what === undefined ? err.message : `${failure.what}: ${err.message}`;
  return failure.retryable
    ? ApplicationFailure.retryable(message, failure.type)
    : ApplicationFailure.nonRetryable(message, failure.type);
}
