import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import picomatch from 'picomatch';
import type { Check } from '../spec/schema';
import type { ReviewFinding } from '../workflows/types';
import { paths, type RunRepo } from './git';
import { layOver } from './holdout';
import { ran, type TestTally } from './tally';

// A green check must mean the base's tests ran against the agent's code (docs/checks.md). Two things are measured
// against the base commit, once per base and check, in a sandbox of their own, and cached:
// - the base's tests (by name from a JUnit report, by count from the runner's summary otherwise): a test that ran
//   at the base and is missing, skipped or filtered out now is a finding;
// - whether the check's harness reports a test that must fail as failing: a canary test appended to the base's test
//   files. Where it does at the base, a passing check is run again with canaries; passing then, the harness lies
//   (an early exit, a patched assertion library, a reporter that swallows failures).

/** Test files, by the names the runners look for by default. Installed and vendored code is not the repo's. */
const TEST_FILE = picomatch(['**/*.{test,spec}.{js,cjs,mjs,jsx,ts,cts,mts,tsx}', '**/test_*.py', '**/*_test.py'], { dot: true });
const NOT_THE_REPOS = /(^|\/)(node_modules|vendor|site-packages|\.venv|venv)\//;
/** A test file of the repo's own, by the runners' conventions; anything else runs as code under test. */
export const isTestFile = (file: string): boolean => TEST_FILE(file) && !NOT_THE_REPOS.test(file);
/** At most this many files get a canary: enough to reach every test process of a suite, bounded for a huge one. */
const MAX_CANARY_FILES = 200;

/** What a check's tests were at the base commit. */
export interface Baseline {
  /** Absent when the check printed no summary and wrote no report: nothing to compare. */
  tally?: TestTally;
  /** The test files a canary was planted in at the base, where it was reported failing; or why it is not used. */
  canary: { files: string[] } | { off: string };
}

/** A canary test: one that must fail, with a title no test of the repo has. */
export interface CanaryRun {
  files: string[];
  titles: string[];
}

/** Regular files at `commit` named as tests. */
export async function testFilesAt(git: RunRepo['git'], commit: string): Promise<string[]> {
  const entries = paths(await git(['ls-tree', '-r', '-z', '--full-tree', commit]));
  return entries
    .map((e) => /^(100644|100755) blob [0-9a-f]+\t(.*)$/s.exec(e)?.[2])
    .filter((f): f is string => f !== undefined && isTestFile(f))
    .slice(0, MAX_CANARY_FILES);
}

const JS_ASSERTION = /\b(assert)\.(strictEqual|equal|deepStrictEqual|deepEqual)\s*\(/;

/**
 * `text` (a test file) with a test appended that must fail, titled `title`, written the way the file's own tests
 * are: its test function (`it`, `test`, or node:test's) and its assertion (`expect`, its `assert` binding), so a
 * patched assertion library or runner that fools its tests fools the canary too. Undefined for other languages.
 */
export function withCanary(file: string, text: string, title: string): string | undefined {
  const t = JSON.stringify(title);
  if (file.endsWith('.py')) {
    const check = /\bself\.assert\w*\(/.test(text) ? `self.assertEqual(${t}, ${JSON.stringify(`${title}!`)})` : `assert ${t} == ${JSON.stringify(`${title}!`)}`;
    const cls = `Test_${title.replace(/\W/g, '_')}`;
    return `${text.endsWith('\n') ? text : `${text}\n`}\n\nimport unittest as _${cls}_unittest\n\n\nclass ${cls}(_${cls}_unittest.TestCase):\n    def test_${title.replace(/\W/g, '_')}(self):\n        ${check}\n`;
  }
  const esm = /\.m[jt]s$/.test(file) || /^\s*(import|export)\s/m.test(text);
  const nodeTest = esm ? "(await import('node:test')).test" : "require('node:test').test";
  const assertion = /\bexpect\s*\(/.test(text)
    ? `expect(${t}).toBe(${JSON.stringify(`${title}!`)})`
    : JS_ASSERTION.test(text)
      ? `assert.${JS_ASSERTION.exec(text)![2]}(${t}, ${JSON.stringify(`${title}!`)})`
      : `(${esm ? "(await import('node:assert')).default" : "require('node:assert')"}).strictEqual(${t}, ${JSON.stringify(`${title}!`)})`;
  const fn = `typeof it === 'function' ? it : typeof test === 'function' ? test : ${nodeTest}`;
  return `${text.endsWith('\n') ? text : `${text}\n`}\n;(${fn})(${t}, ${esm && assertion.includes('await') ? 'async ' : ''}() => { ${assertion}; });\n`;
}

/**
 * Appends a canary to each of `files` (read from `commit` as git objects, never from the workspace) and writes them
 * into the workspace, replacing whatever stands there rather than writing through it. Files without a canary for
 * their language are left out.
 */
export async function plantCanaries(repo: RunRepo, commit: string, files: string[]): Promise<CanaryRun> {
  const nonce = randomBytes(4).toString('hex');
  const planted: CanaryRun = { files: [], titles: [] };
  const writes = [];
  for (const [i, file] of files.entries()) {
    const entry = await repo.git(['--literal-pathspecs', 'ls-tree', '-z', '--full-tree', commit, '--', file]).catch(() => '');
    const mode = /^(100644|100755) blob /.exec(entry)?.[1];
    if (!mode) continue;
    // An identifier, so every runner reports it as it is (pytest names a test by its function).
    const title = `check_${nonce}_${i + 1}`;
    const content = withCanary(file, await repo.git(['cat-file', 'blob', `${commit}:${file}`]), title);
    if (content === undefined) continue;
    writes.push({ rel: file, content: Buffer.from(content), mode: parseInt(mode, 8) & 0o755 });
    planted.files.push(file);
    planted.titles.push(title);
  }
  await layOver(repo.workTree, writes);
  return planted;
}

/** The planted files as `commit` has them again. */
export async function removeCanaries(repo: RunRepo, commit: string, canary: CanaryRun): Promise<void> {
  if (canary.files.length) await repo.git(['--literal-pathspecs', 'restore', `--source=${commit}`, '--worktree', '--', ...canary.files]);
}

/**
 * Whether a run with canaries reported them failing: by title in a JUnit report, else by the summary's failures
 * growing by at least their number over `plain` (the same check without them), else by the exit code alone (only
 * when the plain run passed). Undefined when it cannot be told.
 */
export function canaryReported(canary: CanaryRun, exitCode: number | null, withCanaries: TestTally | undefined, plain: { exitCode: number | null; tally?: TestTally }): boolean | undefined {
  if (exitCode === 0) return false;
  if (withCanaries?.cases) return canary.titles.every((t) => withCanaries.cases!.some((c) => c.status === 'failed' && c.name.includes(t)));
  if (withCanaries && plain.tally) return withCanaries.failed - plain.tally.failed >= canary.titles.length;
  return plain.exitCode === 0 ? true : undefined;
}

/** Tests by name that ran (passed or failed), counted: the same name may run more than once. */
function ranByName(t: TestTally): Map<string, number> {
  const names = new Map<string, number>();
  for (const c of t.cases ?? []) if (c.status !== 'skipped') names.set(c.name, (names.get(c.name) ?? 0) + 1);
  return names;
}

const MAX_NAMED = 10;

/** The base's tests that did not run now: by name when both runs have a JUnit report, by count otherwise. */
export function baselineFindings(check: string, base: TestTally | undefined, now: TestTally | undefined): ReviewFinding[] {
  if (!base || ran(base) === 0) return [];
  const rule = (r: string, message: string): ReviewFinding => ({ rule: r, message: `Check "${check}": ${message}` });
  if (!now) return [rule('tests-missing', `${ran(base)} tests ran at the base; now the check reported none (no ${base.cases ? 'JUnit report' : "summary line from its runner"}): the tests did not run, or the run was cut short (an early exit?); the base's tests must all run`)];
  if (base.cases && now.cases) {
    const before = ranByName(base);
    const after = ranByName(now);
    const skippedNow = new Set(now.cases.filter((c) => c.status === 'skipped').map((c) => c.name));
    const findings: ReviewFinding[] = [];
    for (const [name, times] of before) {
      if ((after.get(name) ?? 0) >= times) continue;
      findings.push(
        skippedNow.has(name)
          ? rule('tests-skipped', `the test "${name}" ran at the base and is skipped now: remove the skip; the base's tests must all run`)
          : rule('tests-missing', `the test "${name}" ran at the base and did not run now (deleted, renamed, filtered out or never reached): restore it; the base's tests must all run`),
      );
    }
    if (findings.length <= MAX_NAMED) return findings;
    return [...findings.slice(0, MAX_NAMED), rule('tests-missing', `and ${findings.length - MAX_NAMED} more of the base's tests did not run now`)];
  }
  const missing = ran(base) - ran(now);
  if (missing <= 0) return [];
  const skipped = now.skipped > base.skipped ? ` (${now.skipped - base.skipped} more skipped than at the base)` : '';
  return [rule(now.skipped > base.skipped ? 'tests-skipped' : 'tests-missing', `${ran(base)} tests ran at the base and ${ran(now)} ran now, by the runner's summary${skipped}: ${missing} of the base's tests were deleted, skipped, filtered out or never reached; restore them, the base's tests must all run`)];
}

/** The canary finding: the check passed with tests in it that must fail. */
export function lyingHarnessFinding(check: string, canary: CanaryRun): ReviewFinding {
  return {
    rule: 'harness-lying',
    message: `Check "${check}" passed even with ${canary.titles.length === 1 ? 'a test that must fail' : `${canary.titles.length} tests that must fail`} added to the base's test files (${canary.files.slice(0, 3).join(', ')}${canary.files.length > 3 ? ', …' : ''}): something in the change makes the tests report success whatever they find (an early exit, a patched assertion library or test runner, a reporter that hides failures). Remove it; make the tests pass by fixing the code`,
  };
}

/** Where a worker keeps baselines: by base commit and everything about the check that decides its result. */
export function baselineFile(home: string, baseCommit: string, check: Check, sandbox: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify({ baseCommit, run: check.run, junit: check.junit ?? null, sandbox })).digest('hex');
  return path.join(home, 'cache', 'baselines', `${digest}.json`);
}

export async function readBaseline(file: string): Promise<Baseline | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as Baseline;
  } catch {
    return undefined;
  }
}

export async function writeBaseline(file: string, baseline: Baseline): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fs.writeFile(temp, JSON.stringify(baseline));
  await fs.rename(temp, file);
}
