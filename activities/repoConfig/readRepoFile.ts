import type { ActivityDeps } from '../../runtime/deps';
import { readRepoFile } from '../../git/repoFile';

export function repoFileActivities(deps: ActivityDeps) {
  return {
    /** A file of the repo's default branch (git/repoFile.ts), e.g. its `.nightshift.yml`; never the agent's branch. */
    readRepoFile: (input: { repo: string; path: string }) => readRepoFile(deps, input),
  };
}
