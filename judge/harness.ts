import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import picomatch from 'picomatch';
import type { Spec } from '../spec/schema';
import type { ReviewFinding } from '../contracts/run';
import type { Git, RunRepo } from '../git/git';

// The files that decide how the checks run are the harness: the agent may not change them (a `test` script rewritten
// to `echo ok` passes any code). A change to one is a blocking review finding, and the checks run with the base's
// version laid over the agent's workspace whatever the review says. docs/checks.md lists them and says why.

/** Protected whole, at any depth: the runner configs of the common ecosystems, and the generic task runners. */
export const PROTECTED_FILES: readonly string[] = [
  // Node
  '**/jest.config.*',
  '**/vitest.config.*',
  '**/vitest.workspace.*',
  '**/.mocharc*',
  '**/karma.conf.*',
  '**/ava.config.*',
  '**/.npmrc',
  '**/.yarnrc',
  '**/.yarnrc.yml',
  '**/tsconfig*.json',
  // Python
  '**/conftest.py',
  '**/pytest.ini',
  '**/tox.ini',
  '**/noxfile.py',
  // Generic task runners (Go projects' too: `go test` itself has no config file)
  '**/Makefile',
  '**/makefile',
  '**/GNUmakefile',
  '**/*.mk',
  '**/justfile',
  '**/Justfile',
  '**/.justfile',
  '**/Taskfile.yml',
  '**/Taskfile.yaml',
  // The forge's CI: it checks the delivered branch, and a push runs the branch's workflows
  '.github/workflows/**',
  '.gitlab-ci.yml',
  // Snapshots are expected values: rewritten to what the code prints, any code passes
  '**/__snapshots__/**',
  '**/*.snap',
];

/** package.json: only these keys are the harness (the rest, dependencies included, is the agent's to change). */
export const PACKAGE_JSON_KEYS: readonly string[] = ['scripts', 'jest', 'mocha', 'ava', 'vitest', 'c8', 'nyc'];

/**
 * Files where only a part is the harness: that part (a text) is compared; the file is restored whole when it differs.
 */
const PARTIAL: { glob: string; part: (text: string) => string }[] = [
  { glob: '**/pyproject.toml', part: (t) => sectionsAndMentions(t, /^\[\[?\s*tool\.pytest\b/, /pytest/) },
  { glob: '**/setup.cfg', part: (t) => sectionsAndMentions(t, /^\[\s*tool:pytest\s*\]/, /pytest/) },
];

const PACKAGE_JSON = '**/package.json';

/** One protected file the change touched: what to tell the agent, and how the checks get the base's version. */
export interface HarnessChange {
  file: string;
  /**
   * `restore`: the base's file (or none, when the base had none); `merge`: the agent's package.json with the base's
   * harness keys.
   */
  how: 'restore' | 'merge';
  message: string;
}

export type HarnessSpec = Spec['harness'];
const DEFAULT_HARNESS: HarnessSpec = { protect: [], allowChanges: false };

/** A blob of `commit` (`undefined` when there is none, or it is not a regular file: a link, a submodule). */
async function blob(git: Git, commit: string, file: string): Promise<string | undefined> {
  const entry = await git(['--literal-pathspecs', 'ls-tree', '-z', '--full-tree', commit, '--', file]).catch(() => '');
  const m = /^(\d+) blob [0-9a-f]+\t/.exec(entry);
  if (!m || !m[1].startsWith('100')) return undefined;
  return git(['cat-file', 'blob', `${commit}:${file}`]);
}

async function exists(git: Git, commit: string, file: string): Promise<boolean> {
  return (
    (await git(['--literal-pathspecs', 'ls-tree', '-z', '--full-tree', commit, '--', file]).catch(() => '')) !== ''
  );
}

function parseObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The harness keys of package.json that differ, as `scripts.test`, `jest`, … */
function packageJsonChanges(base: Record<string, unknown>, mine: Record<string, unknown>): string[] {
  const changed: string[] = [];
  for (const key of PACKAGE_JSON_KEYS) {
    if (same(base[key], mine[key])) continue;
    const a = base[key],
      b = mine[key];
    if (key === 'scripts' && a && b && typeof a === 'object' && typeof b === 'object') {
      const names = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const n of names)
        if (!same((a as Record<string, unknown>)[n], (b as Record<string, unknown>)[n])) changed.push(`scripts.${n}`);
    } else {
      changed.push(key);
    }
  }
  return changed;
}

/**
 * Lines of the sections whose header matches, and any other line that mentions the tool (dotted keys, inline tables).
 */
function sectionsAndMentions(text: string, header: RegExp, mention: RegExp): string {
  let inside = false;
  const kept: string[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t.startsWith('[')) inside = header.test(t);
    if (inside || mention.test(line)) kept.push(line);
  }
  return kept.join('\n');
}

const REVERT = 'the checks run the base\u2019s harness';

/**
 * The protected files that `commit` changes from `baseCommit`. Every file is read as a git object, never from the
 * workspace, so no link the agent planted is followed. `changedFiles` are git's names (no renames: both sides).
 */
export async function harnessChanges(
  git: Git,
  baseCommit: string,
  commit: string,
  changedFiles: string[],
  harness: HarnessSpec = DEFAULT_HARNESS,
): Promise<HarnessChange[]> {
  if (harness.allowChanges) return [];
  const whole = picomatch([...PROTECTED_FILES, ...harness.protect], { dot: true });
  const isPackageJson = picomatch(PACKAGE_JSON, { dot: true });
  const partial = PARTIAL.map((p) => ({ ...p, match: picomatch(p.glob, { dot: true }) }));
  const changes: HarnessChange[] = [];
  for (const file of changedFiles) {
    const part = partial.find((x) => x.match(file));
    if (!whole(file) && !isPackageJson(file) && !part) continue;
    const wasThere = await exists(git, baseCommit, file);
    const isThere = await exists(git, commit, file);
    const fileChange = (): HarnessChange => ({
      file,
      how: 'restore',
      message: !wasThere
        ? `${file} is part of the test harness (it decides how the checks run) and is new; remove it: ${REVERT}, without it`
        : !isThere
          ? `${file} is part of the test harness (it decides how the checks run) and was deleted; restore it: ${REVERT}`
          : `${file} is part of the test harness (it decides how the checks run); revert your change to it: ${REVERT}`,
    });
    if (whole(file)) {
      changes.push(fileChange());
    } else if (isPackageJson(file)) {
      const base = parseObject(await blob(git, baseCommit, file));
      const mine = parseObject(await blob(git, commit, file));
      if (!base || !mine) {
        // Not a JSON object on one side (a link, a deletion, a new file, garbage): the whole file is at stake.
        if (base || mine || wasThere) changes.push(fileChange());
        continue;
      }
      const keys = packageJsonChanges(base, mine);
      if (keys.length) {
        changes.push({
          file,
          how: 'merge',
          message: `${file}: ${keys.join(', ')} ${keys.length > 1 ? 'are' : 'is'} part of the test harness (it decides how the checks run); revert your change to ${keys.map((k) => `${file} ${k}`).join(', ')}: ${REVERT}`,
        });
      }
    } else if (part) {
      const [a, b] = [await blob(git, baseCommit, file), await blob(git, commit, file)];
      if (a === undefined || b === undefined ? wasThere || isThere : part.part(a) !== part.part(b)) {
        changes.push({
          ...fileChange(),
          message: `${file}: its pytest settings are part of the test harness (they decide how the checks run); revert your change to them: ${REVERT}`,
        });
      }
    }
  }
  return changes;
}

export function harnessFindings(changes: HarnessChange[]): ReviewFinding[] {
  return changes.map((c) => ({ rule: 'harness-changed', file: c.file, message: c.message }));
}

/**
 * Lays the base's harness over the workspace for the checks: protected files as the base has them (removed when the
 * base has none), package.json with the base's harness keys. The worker's git writes the files (it replaces a link
 * rather than write through it); package.json is written beside itself and renamed over, its directories checked
 * to be directories, not links. Returns what it did, for the log.
 */
export async function restoreHarness(
  repo: RunRepo,
  baseCommit: string,
  commit: string,
  changes: HarnessChange[],
): Promise<string[]> {
  const restore = changes.filter((c) => c.how === 'restore').map((c) => c.file);
  // --no-overlay (restore's default): a path the base lacks is removed from the work tree. The index is left alone.
  if (restore.length)
    await repo.git(['--literal-pathspecs', 'restore', `--source=${baseCommit}`, '--worktree', '--', ...restore]);
  const done = restore.length ? [`${restore.join(', ')}: as the base has them (removed where it has none)`] : [];
  for (const { file } of changes.filter((c) => c.how === 'merge')) {
    const mine = parseObject(await repo.git(['cat-file', 'blob', `${commit}:${file}`]))!;
    const base = parseObject(await repo.git(['cat-file', 'blob', `${baseCommit}:${file}`]))!;
    const merged: Record<string, unknown> = { ...mine };
    for (const key of PACKAGE_JSON_KEYS) {
      if (key in base) merged[key] = base[key];
      else delete merged[key];
    }
    await writeInside(repo.workTree, file, JSON.stringify(merged, null, 2) + '\n');
    done.push(`${file}: the base's ${PACKAGE_JSON_KEYS.filter((k) => k in base || k in mine).join(', ')}`);
  }
  return done;
}

/** `rel` under `root`, once every directory on the way is checked to be a directory, not a link. */
async function inside(root: string, rel: string): Promise<string> {
  let dir = root;
  for (const part of rel.split('/').slice(0, -1)) {
    dir = path.join(dir, part);
    if (!(await fs.lstat(dir)).isDirectory())
      throw new Error(`cannot lay the harness over ${rel}: ${path.relative(root, dir)} is not a directory`);
  }
  return path.join(root, rel);
}

/** Writes `rel` under `root` without following a link: the file is replaced, never written through. */
async function writeInside(root: string, rel: string, text: string): Promise<void> {
  const target = await inside(root, rel);
  const temp = path.join(path.dirname(target), `.nightshift-${randomBytes(6).toString('hex')}`);
  // 'wx' (O_CREAT|O_EXCL) never opens an existing file or link; rename replaces whatever is at the target unfollowed.
  await fs.writeFile(temp, text, { flag: 'wx' });
  const st = await fs.lstat(target).catch(() => undefined);
  if (st?.isDirectory()) await fs.rm(target, { recursive: true, force: true });
  await fs.rename(temp, target);
}

/**
 * For the checks: the base's harness laid over a fresh checkout of `commit` (unless the spec allows harness changes).
 */
export async function layBaseHarness(
  repo: RunRepo,
  baseCommit: string,
  commit: string,
  harness: HarnessSpec = DEFAULT_HARNESS,
): Promise<string[]> {
  if (harness.allowChanges) return [];
  // A fresh checkout of `commit` (judge/checkRun.ts): a protected file git ignores (a conftest.py the agent
  // listed in .gitignore) is in no commit, so it is not there to remove.
  const changes = await harnessChanges(
    repo.git,
    baseCommit,
    commit,
    await repo.changedFiles(baseCommit, commit),
    harness,
  );
  return restoreHarness(repo, baseCommit, commit, changes);
}
