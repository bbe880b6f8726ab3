import { spawn } from 'node:child_process';
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';

import { runHostTool } from '../processes/hostTools';
import { ProgramError, runProgram } from '../processes/run';
import { GIT_OBJECTS_DIR } from '../sandbox/layout';

/**
 * git config for every git that may meet a signature (`-c`, so above any repo's own config): git picks the program by
 * the signature's first line, so each kind's program is pinned. Only ssh-keygen ever checks one; an OpenPGP or X.509
 * signature meets /bin/false (or nothing, where there is none), never a program a repository's config names.
 */
export const SIGNATURE_PROGRAM_PINS = [
  '-c',
  'gpg.format=ssh',
  '-c',
  'gpg.ssh.program=ssh-keygen',
  '-c',
  'gpg.program=/bin/false',
  '-c',
  'gpg.openpgp.program=/bin/false',
  '-c',
  'gpg.x509.program=/bin/false',
  '-c',
  'gpg.ssh.defaultKeyCommand=/bin/false',
  // git log would check each commit's signature on its own, and print what it found among the commits.
  '-c',
  'log.showSignature=false',
];

// Every git the worker runs is pinned: no system or global config, no hooks, no helper programs that a repository's
// config or attributes could name, no transport but local files. What git reads besides that is decided by where it
// runs: RunRepo below keeps a run's git directory where no sandbox can write (docs/security.md, "The host never
// interprets what the agent wrote").
const SAFE = [
  '-c',
  'core.hooksPath=/dev/null',
  // The docker driver hands the workspace to the sandbox's user; it is still ours to read.
  '-c',
  'safe.directory=*',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'core.pager=cat',
  '-c',
  'core.sshCommand=false',
  '-c',
  'core.attributesFile=/dev/null',
  '-c',
  'core.symlinks=true',
  '-c',
  'submodule.recurse=false',
  '-c',
  'protocol.allow=never',
  '-c',
  'protocol.file.allow=always',
  '-c',
  'commit.gpgsign=false',
  ...SIGNATURE_PROGRAM_PINS,
  '-c',
  'user.name=Nightshift',
  '-c',
  'user.email=nightshift@localhost',
  // Many runs deliver into one repo at once: an automatic gc taking its locks would fail the others' fetches.
  '-c',
  'gc.auto=0',
  '-c',
  'maintenance.auto=false',
];

const ENV = {
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_ATTR_NOSYSTEM: '1',
  GIT_NO_REPLACE_OBJECTS: '1',
  GIT_TERMINAL_PROMPT: '0',
  LANG: 'C',
};

export class GitError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly code: number | null,
  ) {
    // git's hints are advice to a person at a terminal; the reason is in the other lines.
    const reason = stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('hint:'))
      .slice(-3)
      .join(' ');
    super(`git ${args.join(' ')} failed: ${reason || `exit ${code}`}`);
    this.name = 'GitError';
  }

  /** Another git held a lock in the same repo (parallel deliveries): worth another try, not a failure. */
  get repoBusy(): boolean {
    return /\.lock'?: File exists|cannot lock ref|Unable to create .*\.lock/i.test(this.stderr);
  }
}

/** Runs git with its arguments; what it prints is the result. */
export type Git = (args: string[]) => Promise<string>;

/**
 * Where a run's git directory keeps its repo's default branch (the source's HEAD), which layOut moves HEAD away from.
 */
export const DEFAULT_BRANCH_CONFIG = 'nightshift.defaultBranch';

/** git in `cwd`, pinned (see SAFE): for repos the server owns (the source repo, scratch repos). */
export async function git(cwd: string, args: string[]): Promise<string> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...ENV };
  try {
    return (await runProgram('git', [...SAFE, ...args], { cwd, env, maxBuffer: 256 * 1024 * 1024 })).stdout;
  } catch (err) {
    if (!(err instanceof ProgramError)) throw err;
    throw new GitError(args, err.stderr, typeof err.code === 'number' ? err.code : null);
  }
}

/**
 * How git reaches a registered remote (git/mirror.ts): the URL's one protocol, and a config file with the credential.
 */
export interface RemoteAccess {
  /** A git config file (0600, in a 0700 temp dir) read as the global config: http.extraHeader or core.sshCommand. */
  globalConfig: string;
  protocol: 'http' | 'https' | 'ssh';
  /** Each chunk git writes to stderr (its progress), as it comes. */
  onStderr?: (chunk: string) => void;
}

/**
 * git pinned as `git` is, but allowed to dial the registered remote's one protocol, with the credential only in the
 * config file GIT_CONFIG_GLOBAL names: never in argv or the environment's values, never in a repo's config.
 * core.sshCommand comes from that file (a `-c` would override it).
 */
export function remoteGit(cwd: string, args: string[], access: RemoteAccess): Promise<string> {
  const safe = SAFE.filter((arg, i) => arg !== 'core.sshCommand=false' && SAFE[i + 1] !== 'core.sshCommand=false');
  const full = [...safe, '-c', `protocol.${access.protocol}.allow=always`, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn('git', full, {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...ENV, GIT_CONFIG_GLOBAL: access.globalConfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      // Progress rewrites one line with \r: keep the tail only, for the error's reason.
      stderr = (stderr + text).slice(-64 * 1024);
      access.onStderr?.(text);
    });
    child.on('error', (err) => reject(new GitError(args, err.message, null)));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new GitError(args, stderr.replace(/\r/g, '\n'), code));
    });
  });
}

/** Local paths and file:// URLs are delivered by fetching into the repo; other URLs need push. */
export function localRepoPath(repo: string): string | undefined {
  if (repo.startsWith('file://')) return new URL(repo).pathname;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/]+@[^:]+:/.test(repo)) return undefined;
  return repo;
}

/** NUL-separated paths (`-z`), read as they are: no quoting, so no name can slip past a glob. */
export function paths(out: string): string[] {
  return out.split('\0').filter(Boolean);
}

/**
 * A run's repository on its worker. The git directory (`<root>/git`) is outside every mount of the sandbox; the
 * workspace is only its work tree, read as files. The agent gets a `.git` of its own in the workspace, a copy made
 * fresh for each stage, which the host never reads: git skips any entry named `.git` when it walks a work tree, and
 * nested repositories are dropped before a commit (git would follow their `.git` to resolve a gitlink).
 */
export class RunRepo {
  readonly gitDir: string;
  readonly git: Git;

  constructor(
    readonly root: string,
    readonly workTree: string,
  ) {
    this.gitDir = path.join(root, 'git');
    this.git = (args) => git(root, ['--git-dir', this.gitDir, '--work-tree', workTree, ...args]);
  }

  /**
   * A fresh git directory with the source repo's branches (refs/heads/*, as in the source) and objects.
   * `hardlinks` only for a source the server owns (a remote's mirror, git/mirror.ts): a local repo's object
   * files are never shared with the run. Shared object files are read-only to git and outside every sandbox.
   */
  async cloneFrom(source: string, opts: { hardlinks?: boolean } = {}): Promise<void> {
    // No template (sample hooks, description, info/exclude): files nobody reads, each one a write on every provision.
    await fs.rm(this.gitDir, { recursive: true, force: true });
    await git(this.root, [
      'clone',
      '--quiet',
      '--bare',
      '--template=',
      opts.hardlinks ? '--local' : '--no-hardlinks',
      '--',
      source,
      this.gitDir,
    ]);
  }

  /**
   * Right after a clone from the repo's source: the branch its HEAD names, kept as the repo's default branch (none
   * when the source's HEAD is detached). Only from the source, never from another run's git directory.
   */
  async rememberDefaultBranch(): Promise<void> {
    const head = (await this.git(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim();
    if (head) await this.git(['config', DEFAULT_BRANCH_CONFIG, head]);
  }

  /** The branch the run's HEAD is on (set by `layOut`; the agent cannot move it). */
  async branch(): Promise<string> {
    return (await this.git(['symbolic-ref', '--short', 'HEAD'])).trim();
  }

  async commitOf(rev: string): Promise<string> {
    return (await this.git(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`])).trim();
  }

  /**
   * The workspace as `commit` on `branch`: tracked files reset, untracked ones removed (ignored ones, such as an
   * installed node_modules, stay), and a new `.git` for the agent. git replaces a symlink in a leading path by a
   * directory rather than write through it, so what the agent left cannot redirect these writes.
   */
  async layOut(branch: string, commit: string, opts: { fresh?: boolean; checkedOut?: boolean } = {}): Promise<void> {
    const sha = /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit) ? commit : await this.commitOf(commit);
    if (opts.checkedOut) await this.pointHead(branch, sha);
    else await this.git(['checkout', '--quiet', '--force', '--no-recurse-submodules', '-B', branch, sha]);
    // A fresh workspace (a clean checkout below, nothing written yet) has nothing untracked to clean.
    if (!opts.fresh) await this.git(['clean', '--quiet', '-ffd']);
    await this.giveAgentGit(branch, sha);
  }

  /**
   * HEAD on `branch` at `commit`, the work tree and index left as they are: for a workspace that is that commit's
   * tree already (git/checkouts.ts). By git, which judges the branch's name as `checkout -B` would.
   */
  private async pointHead(branch: string, commit: string): Promise<void> {
    await this.git(['update-ref', '--no-deref', `refs/heads/${branch}`, commit]);
    await this.git(['symbolic-ref', 'HEAD', `refs/heads/${branch}`]);
  }

  /**
   * Whatever is in the workspace (the agent's `.git`s excepted) as one commit on the branch; HEAD when nothing changed.
   */
  async commitWorkspace(message: string): Promise<string> {
    await this.dropNestedGitDirs();
    await this.git(['add', '--all']);
    const staged = await this.git(['diff', '--cached', '--name-only', '-z']);
    if (staged) await this.git(['commit', '--quiet', '--no-verify', '-m', message]);
    return this.commitOf('HEAD');
  }

  /** Files changed between two commits: both sides of a rename or copy, deletions, mode and type changes. */
  async changedFiles(from: string, to: string): Promise<string[]> {
    return paths(
      await this.git(['diff', '--name-only', '-z', '--no-renames', '--no-ext-diff', '--no-textconv', from, to]),
    );
  }

  async diff(from: string, to: string): Promise<string> {
    return this.git(['diff', '--binary', '--no-ext-diff', '--no-textconv', from, to]);
  }

  /** Paths in the workspace that differ from HEAD (the agent's `.git` is not part of it). */
  async touched(): Promise<string[]> {
    return paths(await this.git(['status', '--porcelain', '-z', '--untracked-files=all', '--ignore-submodules=all']));
  }

  /**
   * A repository for the agent at `<workspace>/.git`, on the run's branch with a matching index: the run's refs, and
   * its objects borrowed read-only (objects/info/alternates → GIT_OBJECTS_DIR, where the sandbox sees the run's
   * objects mounted read-only) rather than copied, so a long history costs nothing to hand over. What the agent
   * commits goes into its own objects; the worker never reads any of it. Whatever `.git` was there (a file, a link, a
   * directory) is removed without being followed or read, and the new one made from nothing: a directory of the
   * worker's own, written while no sandbox process runs (each stage's commands are dead before the worker lays out).
   */
  private async giveAgentGit(branch: string, commit: string): Promise<void> {
    const target = path.join(this.workTree, '.git');
    // Written, not cloned (what `clone --bare --shared` and four more gits would make): the run's refs are its
    // packed-refs (a clone packs them all) and the branch just checked out.
    await fs.rm(target, { recursive: true, force: true });
    await fs.mkdir(path.join(target, 'refs', 'heads', path.dirname(branch)), { recursive: true });
    await fs.mkdir(path.join(target, 'objects', 'info'), { recursive: true });
    await fs.writeFile(path.join(target, 'HEAD'), `ref: refs/heads/${branch}\n`, { flag: 'wx' });
    await fs.writeFile(
      path.join(target, 'config'),
      '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n',
      { flag: 'wx' },
    );
    await fs.writeFile(path.join(target, 'refs', 'heads', branch), `${commit}\n`, { flag: 'wx' });
    await fs
      .copyFile(path.join(this.gitDir, 'packed-refs'), path.join(target, 'packed-refs'), fsConstants.COPYFILE_EXCL)
      .catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    await fs.writeFile(path.join(target, 'objects', 'info', 'alternates'), `${GIT_OBJECTS_DIR}\n`, { flag: 'wx' });
    await fs.copyFile(path.join(this.gitDir, 'index'), path.join(target, 'index'), fsConstants.COPYFILE_EXCL);
  }

  /**
   * Removes every `.git` below the workspace's top level. git would read one (a directory, a `gitdir:` file, a link)
   * to record an untracked nested repository, or a submodule, as a gitlink: a path the agent chose, read on the host.
   * `find -P` never follows a link; `-xdev` keeps out of an environment's overlays, which git never reads (they are
   * excluded) and which are too big to walk on every commit.
   */
  private async dropNestedGitDirs(): Promise<void> {
    const walk = [
      ...['-P', this.workTree, '-xdev', '-mindepth', '1'],
      ...['(', '-path', path.join(this.workTree, '.git'), '-prune', ')'],
      ...['-o', '(', '-name', '.git', '-prune', '-print0', ')'],
    ];
    const found = await runHostTool('find', walk, 64 * 1024 * 1024).catch((err: Error) => {
      throw new Error(`cannot look for nested repositories in the workspace: ${err.message}`);
    });
    for (const p of paths(found)) await fs.rm(p, { recursive: true, force: true });
  }
}

/**
 * A file as committed at HEAD of a repo the server owns, read as text without checking anything out (no filters, no
 * hooks: SAFE); undefined when HEAD has no such regular file, or there is no HEAD yet. Refused above `maxBytes`.
 */
export async function headFile(repo: string, file: string, maxBytes = 64 * 1024): Promise<string | undefined> {
  let entry: string;
  try {
    entry = await git(repo, ['ls-tree', '-l', '-z', 'HEAD', '--', file]);
  } catch (err) {
    // An empty repo: nothing committed, so no file either.
    if (err instanceof GitError && /Not a valid object name|not a tree object/i.test(err.stderr)) return undefined;
    throw err;
  }
  // "<mode> blob <sha> <size>\t<path>": a link or a directory by that name is not the file.
  const m = /^100(?:644|755) blob ([0-9a-f]+) +(\d+)\t/.exec(entry);
  if (!m) return undefined;
  if (Number(m[2]) > maxBytes) throw new Error(`${file} is ${m[2]} bytes, more than ${maxBytes}`);
  return git(repo, ['cat-file', 'blob', m[1]]);
}
