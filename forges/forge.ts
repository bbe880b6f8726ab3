/** What Nightshift asks of a forge (Gitea, GitHub) about one repository. */
export interface Forge {
  /**
   * Open the PR for branch → base, or find the one already there (open, or at this commit): a retry never opens a
   * second.
   */
  openPullRequest(i: {
    branch: string;
    base: string;
    commit: string;
    title: string;
    body: string;
    draft?: boolean;
  }): Promise<PullRequestRef>;
  /** Issues and PRs share numbers on both forges. */
  comment(issue: number, body: string): Promise<void>;
  permission(user: string): Promise<ForgePermission>;
  /** The file's text at `ref` (default: the default branch); undefined when the repo has no such file there. */
  readFile(path: string, ref?: string): Promise<string | undefined>;
  defaultBranch(): Promise<string>;
  /** Combined status of a commit (commit statuses; GitHub also check runs). */
  commitStatus(sha: string): Promise<CommitStatus>;
}

export type ForgePermission = 'admin' | 'write' | 'read' | 'none';

export interface PullRequestRef {
  number: number;
  url: string;
  /** False when it was already there (a retried call, or a branch that already had one). */
  created: boolean;
}

export interface CommitStatus {
  state: 'success' | 'failure' | 'pending';
  statuses: { context: string; state: string; description: string; url?: string }[];
}

/**
 * A forge's refusal or silence, in one line. `status` is the HTTP status when the forge answered (none when it did
 * not: a timeout, a refused connection); the caller decides from it what a retry can fix.
 */
export class ForgeError extends Error {
  override readonly name = 'ForgeError';

  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message.replace(/\s*\n\s*/g, ' ').trim());
  }

  /** What a retry may fix: no answer, a 5xx, or rate limiting. */
  get retryable(): boolean {
    return this.status === undefined || this.status >= 500 || this.status === 429;
  }
}
