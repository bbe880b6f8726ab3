import { existsSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Why a spec's `repo` was refused: one line, for a 400 naming `repo` (and for the worker's own check). */
export class RepoRefusedError extends Error {
  readonly field = 'repo';
}

export interface ResolvedRepo {
  /** The repo's real path (symlinks followed), inside the repos dir: what the worker clones. */
  path: string;
  /** Its path relative to the repos dir, `/`-separated: what token repo limits (`--repos`) match. */
  name: string;
}

const OUTSIDE = "is outside the server's repos directory (NIGHTSHIFT_REPOS_DIR)";

/**
 * The one decision on a spec's `repo`: a git repository inside `reposDir`, or refused. Relative paths are resolved
 * against `reposDir`; an absolute path or `file://` URL counts only when its real path is inside. Every remote form
 * is refused (until remotes are a feature of their own): a URL would make the worker dial an address the spec chose,
 * with the host's ssh keys and outside any egress policy. Synchronous and free of Temporal, so the API and the
 * worker's provision make the same decision.
 */
export function resolveRepo(repo: string, reposDir: string): ResolvedRepo {
  const shown = JSON.stringify(repo.length > 200 ? `${repo.slice(0, 200)}…` : repo);
  if (/[\x00-\x1f\x7f]/.test(repo)) throw new RepoRefusedError(`${shown} holds a control character`);
  // git would read it as an option (--upload-pack=…).
  if (repo.startsWith('-')) throw new RepoRefusedError(`${shown} begins with "-"`);
  const local = localPathOf(repo);
  if (local === undefined)
    throw new RepoRefusedError(
      `${shown} is a remote; only repositories in the server's repos directory (NIGHTSHIFT_REPOS_DIR) or registered by name (nightshift repo add) can be used`,
    );
  let root: string;
  try {
    root = realpathSync(reposDir);
  } catch {
    throw new RepoRefusedError(`the server's repos directory ${reposDir} (NIGHTSHIFT_REPOS_DIR) does not exist`);
  }
  // The repos dir as configured may itself be reached through a link: a path under either spelling is a candidate.
  const given = path.resolve(reposDir);
  const lexical = path.resolve(given, local);
  // Nothing outside is looked at, not even whether it exists.
  if (!inside(given, lexical) && !inside(root, lexical)) throw new RepoRefusedError(`${shown} ${OUTSIDE}`);
  // The deepest part that exists, symlinks followed, must be inside too: so a link pointing out is refused alike
  // whether or not its target exists, and a refusal says nothing about what is out there.
  let existing = lexical;
  while (!existsSync(existing)) existing = path.dirname(existing);
  const real = realpathSync(existing);
  if (real !== root && !inside(root, real)) throw new RepoRefusedError(`${shown} ${OUTSIDE}`);
  if (
    existing !== lexical ||
    real === root ||
    !(existsSync(path.join(real, '.git')) || existsSync(path.join(real, 'HEAD')))
  ) {
    throw new RepoRefusedError(`${shown} is not a git repository in the server's repos directory`);
  }
  return { path: real, name: path.relative(root, real).split(path.sep).join('/') };
}

/**
 * resolveRepo's real path, with its refusal thrown again as `refused(err)`: a 400 at submit, a failure on the worker.
 */
export function repoPathOr(repo: string, reposDir: string, refused: (err: RepoRefusedError) => Error): string {
  try {
    return resolveRepo(repo, reposDir).path;
  } catch (err) {
    throw err instanceof RepoRefusedError ? refused(err) : err;
  }
}

/**
 * The repo's name relative to `reposDir` (for a run's stored real path), or undefined when it is not inside: a run
 * recorded before the boundary, or under another repos dir.
 */
export function repoNameOf(repoPath: string, reposDir: string): string | undefined {
  let root: string;
  try {
    root = realpathSync(reposDir);
  } catch {
    return undefined;
  }
  const absolute = path.resolve(repoPath);
  return inside(root, absolute) ? path.relative(root, absolute).split(path.sep).join('/') : undefined;
}

/** Strictly below `root`: the repos dir itself is not a repo in it. */
function inside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** The local path a repo names, or undefined for any remote form git would dial. */
function localPathOf(repo: string): string | undefined {
  // Transport helpers: `ext::sh -c …` runs a command, `fd::…`, `<helper>::<address>`.
  if (repo.includes('::')) return undefined;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(repo);
  if (scheme) {
    if (scheme[1].toLowerCase() !== 'file') return undefined;
    try {
      // Throws for a host other than localhost: file://host/path is a remote too.
      return fileURLToPath(repo);
    } catch {
      return undefined;
    }
  }
  // git reads `host:path` and `user@host:path` (a colon before any slash) as ssh.
  if (/^[^/]*:/.test(repo)) return undefined;
  return repo;
}
