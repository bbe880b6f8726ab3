import { ApplicationFailure } from '@temporalio/activity';
import { Octokit } from '@octokit/rest';

export interface PullRequestInput {
  /** GitHub's REST API (`NIGHTSHIFT_GITHUB_API_URL`; GitHub Enterprise has its own). */
  apiUrl: string;
  token: string;
  /** owner/name on GitHub. */
  repo: string;
  branch: string;
  base: string;
  commit: string;
  title: string;
  body: string;
  draft: boolean;
}

export interface PullRequest {
  number: number;
  url: string;
  /** False when it was already there (a retried delivery, or a branch that already had one). */
  created: boolean;
}

/** owner/name from a GitHub remote URL (https, ssh or scp-like), or undefined when it is not one. */
export function githubRepoOf(remoteUrl: string): string | undefined {
  const m = /^(?:https?:\/\/|ssh:\/\/)?(?:[^@/]+@)?[^:/]+(?::\d+)?[:/]([\w.-]+)\/([\w.-]+?)(?:\.git)?\/?$/.exec(remoteUrl.trim());
  return m ? `${m[1]}/${m[2]}` : undefined;
}

/**
 * Open the run's pull request, looking first: when the branch already has one (open, or closed at this very commit),
 * that one is the answer, so a retried activity never opens a second. A lost response to the create is the case that
 * matters: GitHub made the PR, we did not hear; the retry finds it.
 */
export async function openPullRequest(input: PullRequestInput): Promise<PullRequest> {
  const [owner, repo] = input.repo.split('/');
  // Temporal retries the activity; the client must not retry on its own underneath.
  const github = new Octokit({ auth: input.token, baseUrl: input.apiUrl, userAgent: 'nightshift', request: { retries: 0 } });
  const existing = async () => {
    const { data } = await github.rest.pulls.list({ owner, repo, head: `${owner}:${input.branch}`, state: 'all', per_page: 100 });
    return data.find((pr) => pr.state === 'open' || pr.head.sha === input.commit);
  };
  try {
    const found = await existing();
    if (found) return { number: found.number, url: found.html_url, created: false };
    try {
      const { data } = await github.rest.pulls.create({ owner, repo, head: input.branch, base: input.base, title: input.title, body: input.body, draft: input.draft });
      return { number: data.number, url: data.html_url, created: true };
    } catch (err) {
      // Someone (or an earlier attempt) opened it between our look and our create.
      const again = statusOf(err) === 422 ? await existing() : undefined;
      if (again) return { number: again.number, url: again.html_url, created: false };
      throw err;
    }
  } catch (err) {
    throw asFailure(err, input.repo);
  }
}

function statusOf(err: unknown): number | undefined {
  return typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : undefined;
}

/** GitHub's answer as a one-line reason; what a retry cannot fix (bad token, no such repo, invalid PR) is final. */
function asFailure(err: unknown, repo: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const status = statusOf(err);
  const message = String((err as Error).message ?? err).split('\n')[0];
  if (status === undefined || status >= 500 || status === 429) {
    return ApplicationFailure.retryable(`GitHub did not answer the pull request for ${repo}: ${message}`, 'GitHubUnavailable');
  }
  return ApplicationFailure.nonRetryable(`GitHub refused the pull request for ${repo} (${status}): ${message}`, 'PullRequestRefused');
}
