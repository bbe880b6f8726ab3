import { promises as fs } from 'node:fs';
import * as path from 'node:path';

// Files the worker lays into a workspace the agent wrote (hold-out sets, canaries): whatever stands at a path they
// need (a link, a file where a directory goes) is removed first, never written through.

export interface LaidFile {
  /** `/`-separated, relative to the workspace. */
  rel: string;
  content: Buffer;
  mode: number;
}

/**
 * `rel`'s directories under `workspace`, each made a real directory: a link or file on the way is removed, not
 * followed.
 */
async function realDirectories(workspace: string, rel: string): Promise<string> {
  let dir = workspace;
  for (const part of rel.split('/').slice(0, -1)) {
    dir = path.join(dir, part);
    const stat = await fs.lstat(dir).catch(() => undefined);
    if (stat?.isDirectory()) continue;
    if (stat) await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir);
  }
  return dir;
}

/** Write `files` into `workspace` at their relative paths, replacing whatever stands there. */
export async function layOver(workspace: string, files: LaidFile[]): Promise<void> {
  for (const file of files) {
    const target = path.join(await realDirectories(workspace, file.rel), path.basename(file.rel));
    await fs.rm(target, { recursive: true, force: true });
    // `wx`: O_CREAT|O_EXCL, which fails rather than follow a link that appeared at the path.
    await fs.writeFile(target, file.content, { flag: 'wx', mode: file.mode });
  }
}

/**
 * The folders that hold `files`, outermost only: `holdout` for `holdout/a.js` and `holdout/cases/b.js`,
 * `src/__tests__` for `src/__tests__/hidden.test.js`; none for files at the top.
 */
export function foldersOf(files: { rel: string }[]): string[] {
  const dirs = [...new Set(files.filter((f) => f.rel.includes('/')).map((f) => path.posix.dirname(f.rel)))];
  return dirs.filter((d) => !dirs.some((other) => d.startsWith(`${other}/`))).sort();
}

/** Removes each of `folders` under `workspace` whole (a link as a link), after making its parents real directories. */
export async function clearFolders(workspace: string, folders: string[]): Promise<void> {
  for (const folder of folders)
    await fs.rm(path.join(await realDirectories(workspace, folder), path.posix.basename(folder)), {
      recursive: true,
      force: true,
    });
}
