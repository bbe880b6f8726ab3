import type { ActivityDeps } from '../../runtime/deps';
import { signCommits } from '../../proof/commitSigning';
import type { SignInput } from '../../contracts/proof';

export function signActivities(deps: ActivityDeps) {
  return {
    /** The run's commits signed with the server's key (proof/commitSigning.ts): the key never leaves this worker. */
    signCommits: (input: SignInput) => signCommits(deps, input),
  };
}
