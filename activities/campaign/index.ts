import type { ActivityDeps } from '../../runtime/deps';
import { repoOverrides } from './repoOverrides';
import { selectRepos } from './selectRepos';

export function campaignActivities(deps: ActivityDeps) {
  return { selectRepos: selectRepos(deps), repoOverrides: repoOverrides(deps) };
}
