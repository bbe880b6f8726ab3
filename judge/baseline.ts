import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Check } from '../spec/schema';
import type { ReviewFinding } from '../contracts/run';
import { ran, type TestTally } from './tally';

// A green check must mean the base's tests ran against the agent's code (docs/checks.md). Two things are measured
// against the base commit, once per base and check, in a sandbox of their own, and cached:
// - the base's tests (by name from a JUnit report, by count from the runner's summary otherwise): a test that ran
//   at the base and is missing, skipped or filtered out now is a finding;
// - whether the check's harness reports a test that must fail as failing, and the others as they were: canaries
//   (judge/canary.ts) planted in the base's test files. Where it does at the base, a passing check is run again
//   with canaries; a canary passing then, or another test changing, means the harness lies.

/** What a check's tests were at the base commit. */
export interface Baseline {
  /** Absent when the check printed no summary and wrote no report: nothing to compare. */
  tally?: TestTally;
  /** The test files a canary was planted in at the base, where it was reported failing; or why it is not used. */
  canary: { files: string[] } | { off: string };
}

/** Tests by name that ran (passed or failed), counted: the same name may run more than once. */
function ranByName(t: TestTally): Map<string, number> {
  const names = new Map<string, number>();
  for (const c of t.cases ?? []) if (c.status !== 'skipped') names.set(c.name, (names.get(c.name) ?? 0) + 1);
  return names;
}

const MAX_NAMED = 10;

/** The base's tests that did not run now: by name when both runs have a JUnit report, by count otherwise. */
export function baselineFindings(
  check: string,
  base: TestTally | undefined,
  now: TestTally | undefined,
): ReviewFinding[] {
  if (!base || ran(base) === 0) return [];
  const rule = (r: string, message: string): ReviewFinding => ({ rule: r, message: `Check "${check}": ${message}` });
  if (!now)
    return [
      rule(
        'tests-missing',
        `${ran(base)} tests ran at the base; now the check reported none (no ${base.format === 'junit' ? 'JUnit report' : base.format && base.format !== 'summary' ? `${base.format} output` : 'summary line from its runner'}): the tests did not run, or the run was cut short (an early exit?); the base's tests must all run`,
      ),
    ];
  if (base.cases && now.cases) {
    const before = ranByName(base);
    const after = ranByName(now);
    const skippedNow = new Set(now.cases.filter((c) => c.status === 'skipped').map((c) => c.name));
    const findings: ReviewFinding[] = [];
    for (const [name, times] of before) {
      if ((after.get(name) ?? 0) >= times) continue;
      findings.push(
        skippedNow.has(name)
          ? rule(
              'tests-skipped',
              `the test "${name}" ran at the base and is skipped now: remove the skip; the base's tests must all run`,
            )
          : rule(
              'tests-missing',
              `the test "${name}" ran at the base and did not run now (deleted, renamed, filtered out or never reached): restore it; the base's tests must all run`,
            ),
      );
    }
    if (findings.length <= MAX_NAMED) return findings;
    return [
      ...findings.slice(0, MAX_NAMED),
      rule('tests-missing', `and ${findings.length - MAX_NAMED} more of the base's tests did not run now`),
    ];
  }
  const missing = ran(base) - ran(now);
  if (missing <= 0) return [];
  const skipped = now.skipped > base.skipped ? ` (${now.skipped - base.skipped} more skipped than at the base)` : '';
  return [
    rule(
      now.skipped > base.skipped ? 'tests-skipped' : 'tests-missing',
      `${ran(base)} tests ran at the base and ${ran(now)} ran now, by the runner's summary${skipped}: ${missing} of the base's tests were deleted, skipped, filtered out or never reached; restore them, the base's tests must all run`,
    ),
  ];
}

export const NO_COUNTS =
  'no JUnit report, no `go test -json` events or `-v` lines, no `cargo test` results, no summary line of node:test, jest, vitest, mocha or pytest';

/**
 * Why a check's green is only its exit code, or undefined: its runner printed no test counts the worker can read, now
 * or at the base, so neither the baseline nor the canary could judge it (docs/checks.md, "Unverified checks").
 */
export function unverifiedReason(base: TestTally | undefined, now: TestTally | undefined): string | undefined {
  if (now && base) return undefined;
  const when = !now && !base ? 'at the base nor now' : !now ? 'now' : 'at the base';
  return `no test counts could be read ${!now && !base ? 'neither ' : ''}${when} (${NO_COUNTS}): its result is only its exit code, which the code under test can fake; no baseline, no canary. Give it a runner the worker reads (\`go test -json\`, \`pytest\`, a JUnit report), or \`baseline: false\` for a check that runs no tests`;
}

/** Where a worker keeps baselines: by base commit and everything about the check that decides its result. */
export function baselineFile(home: string, baseCommit: string, check: Check, sandbox: unknown): string {
  // `canary: 2`: canaries became mutants of the base's tests; an entry calibrated with the old kind is not reused.
  // `tally: 2`: `go test`, `cargo test` and pytest's names are read; an entry that found no counts in them is stale.
  const digest = createHash('sha256')
    .update(JSON.stringify({ baseCommit, run: check.run, junit: check.junit ?? null, sandbox, canary: 2, tally: 2 }))
    .digest('hex');
  return path.join(home, 'cache', 'baselines', `${digest}.json`);
}

/** A baseline this worker measured before (a hold-out check's too), or undefined. */
export async function readBaseline<T = Baseline>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export async function writeBaseline(file: string, baseline: object): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fs.writeFile(temp, JSON.stringify(baseline));
  await fs.rename(temp, file);
}
