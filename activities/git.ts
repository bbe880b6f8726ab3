import { execFile } from 'node:child_process';

// The workspace is written by an untrusted agent: never let its .git/config or hooks run code on the host.
const SAFE = [
  '-c', 'core.hooksPath=/dev/null',
  // The docker driver hands the workspace to the sandbox's user; it is still ours to read.
  '-c', 'safe.directory=*',
  '-c', 'core.fsmonitor=false',
  '-c', 'protocol.ext.allow=never',
  '-c', 'commit.gpgsign=false',
  '-c', 'user.name=Nightshift',
  '-c', 'user.email=nightshift@localhost',
  // Many runs deliver into one repo at once: an automatic gc taking its locks would fail the others' fetches.
  '-c', 'gc.auto=0',
  '-c', 'maintenance.auto=false',
];

export class GitError extends Error {
  constructor(readonly args: string[], readonly stderr: string, readonly code: number | null) {
    // git's hints are advice to a person at a terminal; the reason is in the other lines.
    const reason = stderr.trim().split('\n').filter((l) => !l.startsWith('hint:')).slice(-3).join(' ');
    super(`git ${args.join(' ')} failed: ${reason || `exit ${code}`}`);
    this.name = 'GitError';
  }

  /** Another git held a lock in the same repo (parallel deliveries): worth another try, not a failure. */
  get repoBusy(): boolean {
    return /\.lock'?: File exists|cannot lock ref|Unable to create .*\.lock/i.test(this.stderr);
  }
}

export function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      [...SAFE, ...args],
      { cwd, maxBuffer: 256 * 1024 * 1024, env: { PATH: process.env.PATH, HOME: process.env.HOME, GIT_TERMINAL_PROMPT: '0', LANG: 'C' } },
      (err, stdout, stderr) => {
        if (err) reject(new GitError(args, String(stderr), typeof err.code === 'number' ? err.code : null));
        else resolve(String(stdout));
      },
    );
  });
}

/** Local paths and file:// URLs are delivered by fetching into the repo; other URLs need push. */
export function localRepoPath(repo: string): string | undefined {
  if (repo.startsWith('file://')) return new URL(repo).pathname;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/]+@[^:]+:/.test(repo)) return undefined;
  return repo;
}
