// A selector's repos made registered repos (config/remotes.ts), so that each run of the campaign is an ordinary run on
// a registered repo: cloned, reviewed and delivered with the forge's credential, its pull request the default. A repo
// already registered (by its clone URL) keeps its registration and its name.
import type { RegisteredForge } from '../config/forges';
import { RemoteRepoError, RemoteRepos, type RemoteRepo } from '../config/remotes';
import type { SelectedRepo } from '../contracts/campaign';
import { SpecRejected } from './prepareRun';

/** The registered names of `selected` (in order), and those registered here (to unregister should the start fail). */
export function registerSelected(
  home: string,
  reposDir: string,
  forge: RegisteredForge,
  owner: string,
  selected: SelectedRepo[],
): { names: string[]; added: string[] } {
  const remotes = new RemoteRepos(home, reposDir);
  const added: string[] = [];
  try {
    const names = selected.map((repo) => {
      const known = remotes.list().find((r) => sameRepo(r.url, repo.cloneUrl));
      if (known) return known.name;
      const name = `${owner}.${repo.name}`.slice(0, 64);
      remotes.add({
        name,
        url: repo.cloneUrl,
        forge: forge.kind,
        credential: forge.credential,
        approvers: forge.approvers,
      } satisfies Omit<RemoteRepo, 'addedAt'>);
      added.push(name);
      return name;
    });
    return { names, added };
  } catch (err) {
    unregister(home, added);
    if (!(err instanceof RemoteRepoError)) throw err;
    throw new SpecRejected(`invalid campaign: repos: ${err.message}`, [{ field: 'repos', message: err.message }]);
  }
}

/** Undo registerSelected's registrations (the campaign did not start). */
export function unregister(home: string, names: string[]): void {
  const remotes = new RemoteRepos(home);
  for (const name of names) remotes.remove(name);
}

function sameRepo(a: string, b: string): boolean {
  const plain = (url: string) =>
    url
      .trim()
      .replace(/\/+$/, '')
      .replace(/\.git$/, '')
      .toLowerCase();
  return plain(a) === plain(b);
}
