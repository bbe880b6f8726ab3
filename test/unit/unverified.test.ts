// A check whose test counts cannot be read is unverified (docs/checks.md, "Unverified checks"): said on the check's
// stage line, in the review's notes, in `nightshift status` and in the proof's Test Result, never a silent approve.
import type { CheckResult, RunStateView } from '../../contracts/run';
import { formatRun } from '../../cli/format';
import { testResultStatements } from '../../proof/statements';
import { unverifiedNotes } from '../../workflows/specRun/checks';
import { checksOutcome, reviewOutcome } from '../../workflows/specRun/outcomes';

const REASON = 'no test counts could be read neither at the base nor now (…): its result is only its exit code';
const check = (extra: Partial<CheckResult> = {}): CheckResult => ({
  name: 'test',
  command: 'go test ./...',
  exitCode: 0,
  timedOut: false,
  durationMs: 1200,
  logId: 'l',
  logTail: '',
  passed: true,
  ...extra,
});

test('the review notes an unverified check that passed; a verified one, a failing one and an old result are not noted', () => {
  expect(unverifiedNotes([check({ unverified: REASON })])).toEqual([`Check "test" is unverified: ${REASON}`]);
  expect(unverifiedNotes([check()])).toEqual([]);
  expect(unverifiedNotes([check({ passed: false, exitCode: 1, unverified: REASON })])).toEqual([]);
});

test("the checks' and the review's stage lines say UNVERIFIED and NOT VERIFIED; unchanged without it", () => {
  expect(checksOutcome([check({ unverified: REASON })])).toEqual([true, 'test passed, UNVERIFIED']);
  expect(checksOutcome([check()])).toEqual([true, 'test passed']);
  const notes = unverifiedNotes([check({ unverified: REASON })]);
  expect(reviewOutcome({ verdict: 'approve', findings: [], diffLines: 3, notes })).toEqual([
    true,
    `approved (3 diff lines), NOT VERIFIED: Check "test" is unverified: ${REASON}`,
  ]);
  expect(reviewOutcome({ verdict: 'approve', findings: [], diffLines: 3 })).toEqual([true, 'approved (3 diff lines)']);
});

test('nightshift status: the check is "pass UNVERIFIED" with its reason, the review "approve, NOT VERIFIED" with each note', () => {
  const c = check({ unverified: REASON });
  const run = {
    id: 'r1',
    status: 'awaiting_approval',
    checks: [c],
    review: { verdict: 'approve', findings: [], diffLines: 3, notes: unverifiedNotes([c]) },
    decisions: [],
  } as unknown as RunStateView;
  const text = formatRun(run);
  expect(text).toMatch(/^ {2}pass UNVERIFIED {2}test {2}\(go test \.\/\.\.\., exit 0, /m);
  expect(text).toContain(`unverified: ${REASON}`);
  expect(text).toMatch(/^review {5}approve, NOT VERIFIED \(1\)$/m);
  expect(text).toContain(`not verified: Check "test" is unverified: ${REASON}`);
  const plain = formatRun({ ...run, checks: [check()], review: { verdict: 'approve', findings: [], diffLines: 3 } });
  expect(plain).toMatch(/^ {2}pass {2}test /m);
  expect(plain).toMatch(/^review {5}approve$/m);
});

test("the proof's Test Result of an unverified check is WARNED with the reason; a verified one PASSED", () => {
  const statementOf = (c: CheckResult) =>
    testResultStatements({ checks: [c] } as never, [], new Map(), {}, 'http://x/runs/r1').get(
      'attestations/test-test.json',
    )!;
  expect(statementOf(check({ unverified: REASON })).predicate).toMatchObject({ result: 'WARNED', unverified: REASON });
  expect(statementOf(check()).predicate).toMatchObject({ result: 'PASSED' });
  expect(statementOf(check()).predicate).not.toHaveProperty('unverified');
});
