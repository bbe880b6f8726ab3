import type { ActivityDeps } from '../runtime/deps';
import type { RemoteRepo } from '../config/remotes';
import type { Forge } from './forge';
import { forgeFor } from './index';
import { forgeFailure } from './failure';

/** The forge client of a registered repo, with this worker's value of its credential. */
export function forgeOf(deps: Pick<ActivityDeps, 'secrets' | 'githubApiUrl'>, remote: RemoteRepo): Forge {
  const token = remote.credential ? deps.secrets.workerValue(remote.credential) : undefined;
  try {
    return forgeFor(remote, token, deps.githubApiUrl);
  } catch (err) {
    throw forgeFailure(err, FORGE_FAILURES);
  }
}

/** A forge call whose failure is the activity's: retried when the forge did not answer, final when it refused. */
export async function forgeCall<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw forgeFailure(err, FORGE_FAILURES);
  }
}

const FORGE_FAILURES = { unavailable: 'ForgeUnavailable', refused: 'ForgeRefused' };
