import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import * as path from 'node:path';
import { makeRepoIn } from '../../testbed/makeRepo';

// Scratch dirs and git repos for tests: light to import (test/unit's files use them without the stack).

/** The suite's own dir (globalSetup). */
function suiteDir(): string {
  return process.env.NIGHTSHIFT_TEST_DIR ?? require('node:os').tmpdir();
}

/** Temp dir under the suite's own dir. */
export function tempDir(prefix: string): string {
  const root = suiteDir();
  mkdirSync(root, { recursive: true });
  return mkdtempSync(path.join(root, `${prefix}-`));
}

/** A real git repo (branch main) with these files committed, under the suite's own dir. */
export function makeRepo(files: Record<string, string>): string {
  return makeRepoIn(suiteDir(), files);
}

export function gitIn(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
