import { ApplicationFailure } from '@temporalio/activity';
import { RemoteRepos, type RemoteRepo } from '../../config/remotes';
import type { Forge } from '../../forges/forge';
import type { ActivityDeps } from '../../runtime/deps';
import { forgeOf } from '../../forges/connect';

/** Opens a repo registered on a forge: its registration, and the forge's client with this worker's credential. */
export function forgeOpener(deps: ActivityDeps) {
  const remotes = new RemoteRepos(deps.home);
  return (name: string): { remote: RemoteRepo; forge: Forge } => {
    const remote = remotes.get(name);
    if (!remote || remote.forge === 'none')
      throw ApplicationFailure.nonRetryable(
        `${name} is not a repository registered on a forge (nightshift repo ls)`,
        'NotOnForge',
      );
    return { remote, forge: forgeOf(deps, remote) };
  };
}
