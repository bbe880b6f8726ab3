// One file of a registered repo, read by a worker: only workers hold the repo's credential (and its mirror), so the
// API asks through Temporal rather than dialling the forge itself. Short, and retried little: a person is waiting.
import { proxyActivities } from '@temporalio/workflow';

/** A file on a repo's default branch (a registered remote) or at HEAD (a local repo), by the spec's repo name. */
export interface RepoFileInput {
  repo: string;
  path: string;
}

/** The activity a worker offers on the shared queue (git/mirror.ts): the file's text, or undefined when absent. */
interface RepoFileActivities {
  readRepoFile(input: RepoFileInput): Promise<string | undefined>;
}

const { readRepoFile } = proxyActivities<RepoFileActivities>({
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '45s',
  retry: { maximumAttempts: 2, initialInterval: '1s' },
});

/** The workflow the API runs for `GET /v1/repos/:name/defaults` and a quick spec on a registered repo. */
export async function repoFile(input: RepoFileInput): Promise<string | undefined> {
  return readRepoFile(input);
}
