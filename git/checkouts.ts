import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { runHostTool } from '../processes/hostTools';
import { overlayOnto, overlayReads } from '../sandbox/overlay';
import { git, paths, type RunRepo } from './git';

// Workspaces laid over kept checkouts, copy-on-write: writing a repo's files costs about a millisecond each on this
// kind of disk, cold or warm, which bounded every provision (docs/reference.md, bench:mirror). A checkout of a base's
// tree is kept per worker (and per owner: the docker driver's files are its sandbox user's) and becomes the read-only
// lower layer of the next workspaces; git then writes only what differs from it into the workspace's own upper layer.

/** Checkouts kept per owner; the least recently used go first, never one a workspace lies over. */
const KEPT = 4;
/** A kept checkout this close to the tree wanted serves it (git updates the difference). */
const NEAR_FILES = 64;

interface Checkout {
  /** The git tree checked out (what the files are; commits with the same tree share it). */
  id: string;
  tree: string;
  index: string;
}

export class CheckoutCache {
  constructor(private readonly dir: string) {}

  /**
   * The workspace of `repo` laid over a kept checkout of `commit`'s tree (or of one near it), with the index that
   * describes it, so the layout that follows writes only what differs; made first when none serves. `owner`: the uid
   * the files must belong to (the docker driver's sandbox user); the worker's own when unset. Returns whether the
   * workspace is `commit`'s tree already (nothing for a checkout to write).
   */
  async layOver(repo: RunRepo, commit: string, scratch: string, owner?: number): Promise<boolean> {
    const tree = (await repo.git(['rev-parse', '--verify', `${commit}^{tree}`])).trim();
    const checkout = (await this.near(repo, tree, owner)) ?? (await this.make(repo, tree, owner));
    await overlayOnto(checkout.tree, repo.workTree, scratch);
    await fs.copyFile(checkout.index, path.join(repo.gitDir, 'index'));
    return checkout.id === tree;
  }

  private ownerDir(owner?: number): string {
    return path.join(this.dir, String(owner ?? process.getuid?.() ?? 0));
  }

  private async kept(owner?: number): Promise<(Checkout & { used: number })[]> {
    const dir = this.ownerDir(owner);
    const found: (Checkout & { used: number })[] = [];
    for (const id of await fs.readdir(dir).catch(() => [])) {
      if (!/^[0-9a-f]{40,64}$/.test(id)) continue;
      const index = path.join(dir, id, 'index');
      const stat = await fs.stat(index).catch(() => undefined);
      if (stat) found.push({ id, tree: path.join(dir, id, 'tree'), index, used: stat.mtimeMs });
    }
    return found.sort((a, b) => b.used - a.used);
  }

  /** The kept checkout of `tree`, or the most recent one of the same repo within NEAR_FILES changed files of it. */
  private async near(repo: RunRepo, tree: string, owner?: number): Promise<Checkout | undefined> {
    for (const c of await this.kept(owner)) {
      if (c.id !== tree) {
        // A tree of another repo is unknown here: the diff fails, and that checkout is not near. Nor is one whose
        // attributes differ: they shaped how its files were written (line endings, encodings), unchanged ones too.
        const changed = await repo
          .git(['diff', '--name-only', '-z', '--no-renames', c.id, tree])
          .then(paths, () => undefined);
        if (
          !changed ||
          changed.length > NEAR_FILES ||
          changed.some((p) => p === '.gitattributes' || p.endsWith('/.gitattributes'))
        )
          continue;
      }
      await fs.utimes(c.index, new Date(), new Date());
      return c;
    }
    return undefined;
  }

  /** A checkout of `tree` from the run's git directory (pinned git, no filters), kept; then the least used out. */
  private async make(repo: RunRepo, tree: string, owner?: number): Promise<Checkout> {
    const dir = this.ownerDir(owner);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const staging = await fs.mkdtemp(path.join(dir, '.staging-'));
    try {
      const gitDir = path.join(staging, 'git');
      const files = path.join(staging, 'tree');
      await fs.mkdir(files);
      await git(staging, ['clone', '--quiet', '--bare', '--shared', '--template=', '--', repo.gitDir, gitDir]);
      const inStaging = (args: string[]) => git(staging, ['--git-dir', gitDir, '--work-tree', files, ...args]);
      await inStaging(['read-tree', '--reset', '-u', tree]);
      if (owner !== undefined) {
        await runHostTool('chown', ['-R', '-h', `${owner}:${owner}`, '--', files]);
        // chown changed every file's ctime: the index learns the new stat data, so git need not read them again.
        await inStaging(['update-index', '-q', '--refresh']).catch(() => undefined);
      }
      await fs.rename(path.join(gitDir, 'index'), path.join(staging, 'index'));
      await fs.rm(gitDir, { recursive: true, force: true });
      await fs.rename(staging, path.join(dir, tree)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      });
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
    await this.evict(owner, tree);
    return { id: tree, tree: path.join(dir, tree, 'tree'), index: path.join(dir, tree, 'index') };
  }

  private async evict(owner: number | undefined, keep: string): Promise<void> {
    const kept = await this.kept(owner);
    for (const c of kept.slice(KEPT)) {
      if (c.id === keep || (await overlayReads(`${c.tree},`))) continue;
      await fs.rm(path.dirname(c.tree), { recursive: true, force: true });
    }
  }
}
