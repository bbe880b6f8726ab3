import type { RemoteRepo } from '../config/remotes';
import type { Forge } from './forge';
import { GiteaForge, giteaRepoOf } from './gitea';
import { GitHubForge, githubRepoOf } from './github';
import { ForgeError } from './forge';

/** The forge client for a registered repo, with the worker's credential (`githubApiUrl`: NIGHTSHIFT_GITHUB_API_URL). */
export function forgeFor(remote: RemoteRepo, token: string | undefined, githubApiUrl: string): Forge {
  if (!token)
    throw new ForgeError(
      `${remote.name} has no credential on this worker (${remote.credential ?? 'none registered'}): the forge's API needs one`,
      403,
    );
  if (remote.forge === 'gitea') {
    const repo = giteaRepoOf(remote.url);
    if (!repo) throw new ForgeError(`${remote.name}: cannot tell Gitea's API from ${remote.url}`, 400);
    return new GiteaForge({ ...repo, token });
  }
  const repo = githubRepoOf(remote.url);
  if (remote.forge !== 'github' || !repo)
    throw new ForgeError(`${remote.name} (${remote.url}) is not on a forge Nightshift knows`, 400);
  return new GitHubForge(githubApiUrl, token, repo);
}
