import { Octokit } from '@octokit/rest';
import { ForgeError, type CommitStatus, type Forge, type ForgePermission, type PullRequestRef } from './forge';

/** owner/name from a GitHub remote URL (https, ssh or scp-like), or undefined when it is not one. */
export function githubRepoOf(remoteUrl: string): string | undefined {
  const m = /^(?:https?:\/\/|ssh:\/\/)?(?:[^@/]+@)?[^:/]+(?::\d+)?[:/]([\w.-]+)\/([\w.-]+?)(?:\.git)?\/?$/.exec(
    remoteUrl.trim(),
  );
  return m ? `${m[1]}/${m[2]}` : undefined;
}

/**
 * One GitHub repository through its REST API (`apiUrl`: api.github.com, GitHub Enterprise's, or the tests' stand-in).
 */
export class GitHubForge implements Forge {
  private readonly github: Octokit;
  private readonly owner: string;
  private readonly repo: string;

  constructor(apiUrl: string, token: string, ownerAndName: string) {
    [this.owner, this.repo] = ownerAndName.split('/');
    // Temporal retries the activity; the client must not retry on its own underneath.
    this.github = new Octokit({
      auth: token,
      baseUrl: apiUrl,
      userAgent: 'nightshift',
      request: { retries: 0, timeout: 30_000 },
    });
  }

  /**
   * Looks first: when the branch already has a pull request (open, or closed at this very commit), that one is the
   * answer. A lost response to the create is the case that matters: GitHub made the PR, we did not hear; the retry
   * finds it.
   */
  async openPullRequest(i: {
    branch: string;
    base: string;
    commit: string;
    title: string;
    body: string;
    draft?: boolean;
  }): Promise<PullRequestRef> {
    const { owner, repo } = this;
    const existing = async () => {
      const { data } = await this.github.rest.pulls.list({
        owner,
        repo,
        head: `${owner}:${i.branch}`,
        state: 'all',
        per_page: 100,
      });
      return data.find((pr) => pr.state === 'open' || pr.head.sha === i.commit);
    };
    return this.call('the pull request', async () => {
      const found = await existing();
      if (found) return { number: found.number, url: found.html_url, created: false };
      try {
        const { data } = await this.github.rest.pulls.create({
          owner,
          repo,
          head: i.branch,
          base: i.base,
          title: i.title,
          body: i.body,
          draft: i.draft ?? false,
        });
        return { number: data.number, url: data.html_url, created: true };
      } catch (err) {
        // Someone (or an earlier attempt) opened it between our look and our create.
        const again = statusOf(err) === 422 ? await existing() : undefined;
        if (again) return { number: again.number, url: again.html_url, created: false };
        throw err;
      }
    });
  }

  async comment(issue: number, body: string): Promise<void> {
    await this.call(`a comment on #${issue}`, () =>
      this.github.rest.issues.createComment({ owner: this.owner, repo: this.repo, issue_number: issue, body }),
    );
  }

  async permission(user: string): Promise<ForgePermission> {
    try {
      const { data } = await this.github.rest.repos.getCollaboratorPermissionLevel({
        owner: this.owner,
        repo: this.repo,
        username: user,
      });
      return (
        (['admin', 'write', 'read'] as const).find((p) => p === data.permission) ??
        (data.permission === 'maintain' ? 'write' : 'none')
      );
    } catch (err) {
      if (statusOf(err) === 404) return 'none';
      throw this.failure(err, `the permission of ${user}`);
    }
  }

  async readFile(path: string, ref?: string): Promise<string | undefined> {
    try {
      const { data } = await this.github.rest.repos.getContent({
        owner: this.owner,
        repo: this.repo,
        path,
        ...(ref ? { ref } : {}),
      });
      return 'content' in data && typeof data.content === 'string'
        ? Buffer.from(data.content, 'base64').toString('utf8')
        : undefined;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.failure(err, path);
    }
  }

  async defaultBranch(): Promise<string> {
    return this.call(
      'the repository',
      async () => (await this.github.rest.repos.get({ owner: this.owner, repo: this.repo })).data.default_branch,
    );
  }

  async commitStatus(sha: string): Promise<CommitStatus> {
    return this.call(`the status of ${sha.slice(0, 12)}`, async () => {
      const { data } = await this.github.rest.repos.getCombinedStatusForRef({
        owner: this.owner,
        repo: this.repo,
        ref: sha,
      });
      return {
        state: data.state === 'success' ? 'success' : data.state === 'pending' ? 'pending' : 'failure',
        statuses: data.statuses.map((s) => ({
          context: s.context,
          state: s.state,
          description: s.description ?? '',
          ...(s.target_url ? { url: s.target_url } : {}),
        })),
      };
    });
  }

  private async call<T>(what: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      throw this.failure(err, what);
    }
  }

  private failure(err: unknown, what: string): ForgeError {
    if (err instanceof ForgeError) return err;
    const status = statusOf(err);
    const message = String((err as Error).message ?? err).split('\n')[0];
    return new ForgeError(
      status === undefined
        ? `GitHub did not answer ${what} for ${this.owner}/${this.repo}: ${message}`
        : `GitHub refused ${what} for ${this.owner}/${this.repo} (${status}): ${message}`,
      status,
    );
  }
}

function statusOf(err: unknown): number | undefined {
  return typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : undefined;
}
