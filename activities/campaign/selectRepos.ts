import { ApplicationFailure } from '@temporalio/activity';
import picomatch from 'picomatch';
import { RegisteredForges } from '../../config/forges';
import type { RepoSelector, SelectedRepo } from '../../contracts/campaign';
import { forgeCall } from '../../forges/connect';
import { GiteaForge } from '../../forges/gitea';
import type { ActivityDeps } from '../../runtime/deps';

/** Repos checked for the selector's `has` file at once: the forge is asked, not hammered. */
const FILE_CHECKS_AT_ONCE = 8;
/** The most repos of one owner a selector lists through (its matches are then held to the campaign's limit). */
const MAX_LISTED = 5000;

/**
 * The repos a campaign's selector names on a registered forge (config/forges.ts): the owner's repos whose name
 * matches `match` and that hold `has` on their default branch, by name. Only a worker holds the forge's credential,
 * so the API asks through Temporal (workflows/repoSelector.ts). More than `max` matched is a refusal, not a cut.
 */
export function selectRepos(deps: ActivityDeps) {
  return async (input: RepoSelector & { max: number }): Promise<SelectedRepo[]> => {
    const forge = new RegisteredForges(deps.home).get(input.forge);
    if (!forge) throw ApplicationFailure.nonRetryable(`no forge named ${input.forge} is registered`, 'UnknownForge');
    const token = deps.secrets.workerValue(forge.credential);
    if (!token)
      throw ApplicationFailure.nonRetryable(
        `forge ${forge.name}'s credential ${forge.credential} is not in this worker's secrets`,
        'NoCredential',
      );
    const apiUrl = `${forge.url}/api/v1`;
    const matches = picomatch(input.match);
    const listed = await forgeCall(() =>
      new GiteaForge({ apiUrl, owner: input.owner, name: '*', token }).ownerRepos(MAX_LISTED),
    );
    const named = listed.filter((r) => matches(r.name));
    const holding = await inBatches(named, FILE_CHECKS_AT_ONCE, async (r) => {
      if (!input.has) return true;
      const repo = new GiteaForge({ apiUrl, owner: input.owner, name: r.name, token });
      return (await forgeCall(() => repo.readFile(input.has!))) !== undefined;
    });
    const selected = named
      .filter((_, i) => holding[i])
      .sort((a, b) => a.name.localeCompare(b.name))
      // Cloned from under the forge's registered URL, whatever clone URL its answer gave.
      .map((r) => ({ name: r.name, cloneUrl: `${forge.url}/${input.owner}/${r.name}.git` }));
    if (selected.length > input.max)
      throw ApplicationFailure.nonRetryable(`the selector matched more than ${input.max} repos`, 'TooManyRepos');
    return selected;
  };
}

async function inBatches<T, R>(items: T[], size: number, each: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(each))));
  return out;
}
