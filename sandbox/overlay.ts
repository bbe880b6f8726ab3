import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { runHostTool } from '../processes/hostTools';

// Copy-on-write views of a read-only tree (an environment cache entry) inside a sandbox's directories: overlayfs,
// mounted by the worker on the host, so both drivers see an ordinary directory through their bind of the workspace.
// Writes land in an upper directory of the sandbox's own; the tree below is never written, whatever the sandbox does.

/**
 * Characters a path may not have to go into an overlay's mount options: `,` ends an option, a backslash escapes, and
 * in `lowerdir` a `:` separates lower layers (`lowerdir=/cache/x:..` would lay a directory the name chose under the
 * sandbox's view). An upper or work directory may have a `:` (a scheduled run's id has one).
 */
const OPTION_UNSAFE = /[,\\\x00-\x1f\x7f]/;
const LOWER_UNSAFE = /[,:\\\x00-\x1f\x7f]/;

/**
 * Whether a name can be part of an overlay's lower layer (a setup's directory names are checked before they are kept).
 */
export const mountSafe = (name: string) => !LOWER_UNSAFE.test(name);

/**
 * `lower` seen at `target` (an empty directory), its changes kept under `scratch` (`upper/` and `work/`, on the same
 * filesystem). Falls back to a plain copy where overlays cannot be mounted (a worker not running as root): slower,
 * just as isolated. Returns which it did.
 */
export async function overlayOnto(lower: string, target: string, scratch: string): Promise<'overlay' | 'copy'> {
  const upper = path.join(scratch, 'upper');
  const work = path.join(scratch, 'work');
  const unsafe = [lower, upper, work].find((p) => (p === lower ? LOWER_UNSAFE : OPTION_UNSAFE).test(p));
  if (unsafe)
    throw new Error(
      `cannot mount an overlay with "${unsafe}": its name has a character mount options give a meaning to`,
    );
  await fs.mkdir(upper, { recursive: true });
  await fs.mkdir(work, { recursive: true });
  // The merged directory's own owner and mode are the upper's: make them the tree's, so the sandbox's user may write.
  const top = await fs.stat(lower);
  await fs.chown(upper, top.uid, top.gid);
  await fs.chmod(upper, top.mode & 0o7777);
  try {
    await runHostTool('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
      target,
    ]);
    return 'overlay';
  } catch {
    await runHostTool('cp', ['-a', '--reflink=auto', '--no-target-directory', lower, target]);
    return 'copy';
  }
}

/** The mount points at or below `dir`, deepest first, from the kernel's table (octal escapes decoded). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const table = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = table
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmount everything mounted at or below `dir` (a sandbox's root, before it is deleted). */
export async function unmountUnder(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) await runHostTool('umount', ['-l', point]);
}

/** Whether an overlay mounted anywhere reads from `lower` (an entry in use may not be evicted). */
export async function overlayReads(lower: string): Promise<boolean> {
  const table = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return table.includes(`lowerdir=${lower}`);
}
