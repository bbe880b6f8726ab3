import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SANDBOX_PATH } from './layout';

/**
 * The toolchains a worker offers (NIGHTSHIFT_TOOLCHAINS, checked by config/toolchains.ts): name → the real path of a
 * host directory whose `bin/` holds its tools. A bwrap sandbox sees each it asks for read-only at that same path.
 */
export type Toolchains = Record<string, string>;

/** The names in `asked` that `offered` lacks. */
export function unofferedToolchains(asked: string[], offered: Toolchains): string[] {
  return asked.filter((name) => !Object.hasOwn(offered, name));
}

/**
 * The sandbox's PATH with `asked` toolchains: each one's `bin`, in the spec's order, then the base PATH (SANDBOX_PATH)
 * without the directories already listed.
 */
export function toolchainPath(asked: string[], offered: Toolchains): string {
  const bins = asked.filter((name) => Object.hasOwn(offered, name)).map((name) => path.join(offered[name], 'bin'));
  return [...new Set([...bins, ...SANDBOX_PATH.split(':')])].join(':');
}

/**
 * What the environment cache key holds of a toolchain on a driver without an image (bwrap): its directory, and the
 * names and sizes (or link targets) of what its `bin/` holds, so a toolchain upgraded in place (another go, another
 * python) is a new key, while workers of a fleet with the same install share one.
 */
export async function toolchainFingerprint(dir: string): Promise<string> {
  const bin = path.join(dir, 'bin');
  const hash = createHash('sha256').update(`${dir}\0`);
  for (const name of (await fs.readdir(bin).catch(() => [])).sort()) {
    const file = path.join(bin, name);
    const stat = await fs.lstat(file).catch(() => undefined);
    if (!stat) continue;
    hash.update(`${name}\0${stat.isSymbolicLink() ? `->${await fs.readlink(file)}` : stat.size}\0`);
  }
  return hash.digest('hex').slice(0, 32);
}

/** A shell's words for a command it did not find: `sh: 1: go: not found` (dash), `bash: go: command not found`. */
const NOT_FOUND = /(?:^|\s)([^\s:'"`]{1,100}): (?:command )?not found\s*$/;

/**
 * A command that exited 127 because its shell found no `go` to run, said so, with what the server offers:
 * `go: not found in the sandbox; toolchains offered: go, python (sandbox.toolchains)`. Undefined for any other end.
 */
export function notFoundInSandbox(exitCode: number | null, output: string, offered: string[]): string | undefined {
  if (exitCode !== 127) return undefined;
  const lines = output.split('\n').reverse();
  const name = lines.map((line) => NOT_FOUND.exec(line)?.[1]).find((found) => found !== undefined);
  if (!name) return undefined;
  return `${name}: not found in the sandbox; toolchains offered: ${offered.join(', ') || 'none'} (sandbox.toolchains)`;
}
