import { realpathSync, statSync } from 'node:fs';
import * as path from 'node:path';

/**
 * Why a check's `holdout` was refused: one line, for a 400 naming `checks.N.holdout` (and for the worker's own check).
 */
export class HoldoutRefusedError extends Error {}

/**
 * The one decision on a check's `holdout: NAME`: the real path (symlinks followed) of the directory
 * `<holdoutDir>/NAME`, which must be strictly inside the real holdout dir, or refused. The schema already keeps NAME to
 * one path segment; this is the boundary for links an admin (or anyone who can write there) left in the holdout dir.
 * Synchronous, so the API and the worker make the same decision.
 */
export function resolveHoldoutSet(name: string, holdoutDir: string): string {
  const shown = JSON.stringify(name);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || name === '.' || name === '..')
    throw new HoldoutRefusedError(`${shown} is not the name of a hold-out set`);
  let root: string;
  try {
    root = realpathSync(holdoutDir);
  } catch {
    throw new HoldoutRefusedError(
      `the server's hold-out directory ${holdoutDir} (NIGHTSHIFT_HOLDOUT_DIR) does not exist`,
    );
  }
  let real: string;
  try {
    real = realpathSync(path.join(root, name));
  } catch {
    throw new HoldoutRefusedError(`there is no hold-out set ${shown} on this server (NIGHTSHIFT_HOLDOUT_DIR)`);
  }
  const rel = path.relative(root, real);
  // Refused in the same words whether or not the target exists: a refusal says nothing about what is out there.
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw new HoldoutRefusedError(
      `the hold-out set ${shown} is outside the server's hold-out directory (NIGHTSHIFT_HOLDOUT_DIR)`,
    );
  }
  if (!statSync(real).isDirectory()) throw new HoldoutRefusedError(`the hold-out set ${shown} is not a directory`);
  return real;
}
