import { tallyFromJunit, tallyFromOutput } from '../../judge/tally';
import { unverifiedReason } from '../../judge/baseline';

// What a check's tests did, as its runner reported them: the baseline and the hold-out checks count on these.

describe("the counts come from a runner's last summary line, never its other output", () => {
  test.each([
    [
      'node --test (TAP)',
      'ok 1 - a\nnot ok 2 - b\n# tests 4\n# pass 1\n# fail 1\n# cancelled 0\n# skipped 1\n# todo 1\n',
      { passed: 1, failed: 1, skipped: 2 },
    ],
    [
      'node --test (spec)',
      '✔ a\n✖ b\nℹ tests 2\nℹ pass 1\nℹ fail 1\nℹ skipped 0\n',
      { passed: 1, failed: 1, skipped: 0 },
    ],
    ['jest', 'Tests:       2 failed, 1 skipped, 5 passed, 8 total\nTime: 1 s\n', { passed: 5, failed: 2, skipped: 1 }],
    ['pytest', '==== 3 failed, 9 passed, 2 skipped in 0.12s ====\n', { passed: 9, failed: 3, skipped: 2 }],
    ['pytest -k', '==== 1 passed, 4 deselected in 0.01s ====\n', { passed: 1, failed: 0, skipped: 4 }],
    ['mocha', '  4 passing (10ms)\n  2 pending\n  1 failing\n\n  1) square\n', { passed: 4, failed: 1, skipped: 2 }],
    ['mocha, all passing', '  4 passing (10ms)\n  3 pending\n', { passed: 4, failed: 0, skipped: 3 }],
    [
      'an earlier summary, then the last one',
      '# pass 9\n# fail 0\nok\n# pass 1\n# fail 2\n',
      { passed: 1, failed: 2, skipped: 0 },
    ],
    ['pytest, every test skipped', '==== 3 skipped in 0.01s ====\n', { passed: 0, failed: 0, skipped: 3 }],
    ['jest, every test skipped', 'Tests:       3 skipped, 3 total\n', { passed: 0, failed: 0, skipped: 3 }],
    ['no summary', 'assertion failed\n12 tests\n', undefined],
  ])('%s', (_runner, output, counts) => {
    expect(tallyFromOutput(output)).toEqual(counts);
  });
});

describe('a JUnit report gives each test by name', () => {
  test("node --test's reporter: passed, skipped and failed cases, names unescaped", () => {
    const xml = [
      '<?xml version="1.0" encoding="utf-8"?>',
      '<testsuites>',
      '\t<testcase name="adds &amp; carries" time="0.001" classname="test"/>',
      '\t<testcase name="skipme" time="0.0" classname="test">\n\t\t<skipped type="skipped" message="true"/>\n\t</testcase>',
      '\t<testcase name="fails" time="0.0" classname="test" failure="1 !== 2">\n\t\t<failure type="testCodeFailure" message="1 !== 2">boom &lt;x&gt;</failure>\n\t</testcase>',
      '\t<testsuite name="math" tests="1" failures="0" skipped="0">\n\t\t<testcase name="&#233;t&#xE9;" classname="math"/>\n\t</testsuite>',
      '</testsuites>',
    ].join('\n');
    expect(tallyFromJunit(xml)).toEqual({
      passed: 2,
      failed: 1,
      skipped: 1,
      cases: [
        { name: 'test › adds & carries', status: 'passed' },
        { name: 'test › skipme', status: 'skipped' },
        { name: 'test › fails', status: 'failed' },
        { name: 'math › été', status: 'passed' },
      ],
      format: 'junit',
    });
  });

  test("pytest's report: an error counts as failed; totals without cases still count", () => {
    const xml =
      '<testsuites><testsuite name="pytest" errors="1" failures="0" skipped="0" tests="2"><testcase classname="tests.test_calc" name="test_add"><error message="x"/></testcase><testcase classname="tests.test_calc" name="test_sub"/></testsuite></testsuites>';
    expect(tallyFromJunit(xml)).toMatchObject({ passed: 1, failed: 1, skipped: 0 });
    expect(tallyFromJunit('<testsuite tests="5" failures="1" errors="0" skipped="2"></testsuite>')).toEqual({
      passed: 2,
      failed: 1,
      skipped: 2,
      format: 'junit',
    });
    expect(tallyFromJunit('<html>not a report</html>')).toBeUndefined();
  });
});

describe('unverified: a check whose counts cannot be read, now or at the base', () => {
  const t = { passed: 1, failed: 0, skipped: 0 };
  test('counts on both sides: verified; none on either: the reason names what the worker reads', () => {
    expect(unverifiedReason(t, t)).toBeUndefined();
    expect(unverifiedReason(undefined, undefined)).toMatch(
      /^no test counts could be read neither at the base nor now \(no JUnit report, no `go test -json` events.*\): its result is only its exit code/,
    );
    expect(unverifiedReason(t, undefined)).toMatch(/^no test counts could be read now/);
    expect(unverifiedReason(undefined, t)).toMatch(/^no test counts could be read at the base/);
  });
});
