// A campaign's selector, resolved by a worker: only workers hold a forge's credential, so the API asks through Temporal
// (as for a registered repo's file, workflows/repoConfig.ts). Short, and retried little: a person is waiting.
import { proxyActivities } from '@temporalio/workflow';
import type { RepoSelector, SelectedRepo } from '../contracts/campaign';

interface SelectorActivities {
  selectRepos(input: RepoSelector & { max: number }): Promise<SelectedRepo[]>;
}

const { selectRepos } = proxyActivities<SelectorActivities>({
  startToCloseTimeout: '90s',
  scheduleToCloseTimeout: '2m',
  retry: { maximumAttempts: 2, initialInterval: '1s' },
});

/** The workflow the API runs for `POST /v1/campaigns` with a selector: the repos it names, by name. */
export async function repoSelector(input: RepoSelector & { max: number }): Promise<SelectedRepo[]> {
  return selectRepos(input);
}
