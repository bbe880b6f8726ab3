import picomatch from 'picomatch';
import type { Check } from '../spec/schema';
import type { CheckIntegrity, ReviewFinding } from '../contracts/run';
import { execCheck, rerunFresh, type CheckSite } from './checkRun';
import type { RunRepo } from '../git/git';
import { CommandLog, commandPassed, headerCommand } from '../workspaces/commandLog';
import { checkTally, type TestTally } from './tally';

// The base's tests judge the change (docs/checks.md): an agent that cannot fix the code can weaken the tests without
// touching an assertion line: a shared helper made lax, bodies emptied under the same names, a test swapped for a
// trivially true one of the same name, expected values changed in a data file the tests read. So every file the
// base's tests are made of runs at its base version against the agent's code, in a run of its own; the agent's
// versions (and the tests it added) still run in the check's normal run.

/** Directories whose files belong to the tests (their helpers, fixtures, data), at any depth. */
const TEST_DIR = /(^|\/)(tests?|__tests__|specs?|testdata|test_data|fixtures|__fixtures__|__mocks__)\//;
/** Files named as tests (or as the runners' shared test code) wherever they are. */
const TEST_NAMED = picomatch(
  [
    '**/*.{test,spec}.{js,cjs,mjs,jsx,ts,cts,mts,tsx}',
    '**/test_*.py',
    '**/*_test.py',
    '**/*_test.go',
    '**/conftest.py',
  ],
  { dot: true },
);
/** Installed and vendored code is not the repo's tests. */
const INSTALLED = /(^|\/)(node_modules|vendor|site-packages|\.venv|venv)\//;

/**
 * Whether `file` is part of the tests (a test file, or a helper or data file under a test directory) rather than the
 * code under test. Wider than canary.ts `isTestFile`, the files a runner collects as tests.
 */
export const partOfTheTests = (file: string) => !INSTALLED.test(file) && (TEST_DIR.test(file) || TEST_NAMED(file));

/**
 * The test files the change touches: those the base's versions replace for the judging run, and those the spec allows.
 */
export interface TestChanges {
  laid: string[];
  allowed: string[];
}

/**
 * The test files `commit` changes from `baseCommit` (added, changed or deleted), split by `allow` (the spec's globs).
 */
export async function testChanges(
  repo: RunRepo,
  baseCommit: string,
  commit: string,
  allow: string[] = [],
): Promise<TestChanges> {
  const changed = (await repo.changedFiles(baseCommit, commit)).filter(partOfTheTests);
  const allowed = allow.length ? picomatch(allow, { dot: true }) : () => false;
  return { laid: changed.filter((f) => !allowed(f)), allowed: changed.filter((f) => allowed(f)) };
}

/**
 * The base's versions of `files` over the workspace: changed and deleted ones as the base has them, added ones
 * removed (the base's tests run as they were, nothing of the agent's beside them). Written by the worker's pinned git
 * (`restore --no-overlay`), which replaces a link rather than writes through it.
 */
export async function layBaseTests(repo: RunRepo, baseCommit: string, files: string[]): Promise<void> {
  if (files.length)
    await repo.git(['--literal-pathspecs', 'restore', `--source=${baseCommit}`, '--worktree', '--', ...files]);
}

const MAX_NAMED = 10;

function baseTestFinding(
  check: string,
  laid: string[],
  exitCode: number | null,
  tally: TestTally | undefined,
): ReviewFinding {
  const failed = (tally?.cases ?? []).filter((c) => c.status === 'failed').map((c) => `"${c.name}"`);
  const which = failed.length
    ? `: ${failed.slice(0, MAX_NAMED).join(', ')}${failed.length > MAX_NAMED ? `, and ${failed.length - MAX_NAMED} more` : ''} failed`
    : tally
      ? `: ${tally.failed} of its tests failed`
      : '';
  const files = `${laid.slice(0, MAX_NAMED).join(', ')}${laid.length > MAX_NAMED ? ', …' : ''}`;
  return {
    rule: 'base-test-failed',
    file: laid[0],
    message: `Check "${check}" passes only with your versions of the tests: run with the base's versions of ${files} against your code, it failed (exit ${exitCode ?? 'on a signal'})${which}. The base's tests and the files they read (helpers, data) judge the change: fix the code, not the tests. A task that must change these tests lists them in the check's allowTestChanges`,
  };
}

/**
 * A passing check run again with the base's versions of the test files the change touched (`changes`, from
 * `testChanges`), in a fresh sandbox. Failing there is the blocking finding `base-test-failed`. Nothing to run when
 * the change touches no test file the spec does not allow: the normal run already ran the base's tests as they were.
 */
export async function judgeByBaseTests(
  site: CheckSite,
  check: Check,
  baseCommit: string,
  changes: TestChanges,
  integrity: CheckIntegrity,
): Promise<void> {
  const { deps, input, secrets } = site;
  const { laid, allowed } = changes;
  if (!laid.length && !allowed.length) return;
  integrity.baseTests = { laid, allowed };
  if (!laid.length) return;
  await rerunFresh(
    site,
    check,
    'base-tests',
    (repo) => layBaseTests(repo, baseCommit, laid),
    async (sandbox) => {
      const log = new CommandLog(
        deps.runLog,
        input.runId,
        `base tests of check ${check.name}, iteration ${input.iteration}: ${headerCommand(check.run)}, with the base's versions of the ${laid.length} test files the change touched (${laid.slice(0, 5).join(', ')}${laid.length > 5 ? ', …' : ''})${allowed.length ? `; the spec allows ${allowed.join(', ')} to change` : ''}`,
        secrets,
      );
      const exec = await execCheck(sandbox, check, input, secrets, (t, stream) => log.write(t, stream));
      const passed = commandPassed(exec);
      const { tally } = await checkTally(sandbox.workspace, check.junit, log.text());
      log.write(
        `[nightshift: the base's tests ${passed ? 'passed on the change' : 'FAILED on the change: only the changed tests let it pass'}]\n`,
      );
      integrity.baseTests = {
        laid,
        allowed,
        result: passed ? 'passed' : 'failed',
        logId: (await log.close(deps.store)).logId,
      };
      if (!passed) integrity.findings.push(baseTestFinding(check.name, laid, exec.exitCode, tally));
    },
  );
}
