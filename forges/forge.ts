/** What Nightshift asks of a forge (Gitea, GitHub) about one repository. */
export interface Forge {
  /** Open the PR for branch → base, or find the one already there (open, or at this commit): a retry never opens a second. */
  openPullRequest(i: { branch: string; base: string; commit: string; title: string; body: string }): Promise<{ number: number; url: string; created: boolean }>;
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
}
