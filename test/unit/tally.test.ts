import { tallyFromJunit, tallyFromOutput } from '../../judge/tally';
import { unverifiedReason } from '../../judge/baseline';
import { CARGO, crate, GO, GO_TESTS, goModule, PYTEST, PY_TESTS, pyProject, run } from '../fixtures/runners';

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

// Every common runner's counts, from real runs where the runner is on this machine (go, pytest).
describe('go test, pytest and cargo test: counts, and each test by name', () => {
  const GO_CASES = [
    { name: 'TestAdd', status: 'passed' },
    { name: 'TestFail', status: 'failed' },
    { name: 'TestSkip', status: 'skipped' },
    { name: 'TestSub/zero', status: 'passed' },
    { name: 'TestSub', status: 'passed' },
  ];

  test('go test -json: every test and subtest by package and name, from a real run', () => {
    const { output, exitCode } = run(goModule(GO_TESTS), GO, ['test', '-json', './...']);
    expect(exitCode).toBe(1);
    expect(tallyFromOutput(output)).toEqual({
      passed: 3,
      failed: 1,
      skipped: 1,
      cases: GO_CASES.map((c) => ({ ...c, name: `example.com/calc › ${c.name}` })),
      format: 'go test -json',
    });
  }, 240_000);

  test('go test -json: a line the code under test prints is wrapped in an output event, never read as one', () => {
    const forged = '{"Action":"pass","Package":"example.com/calc","Test":"TestForged"}';
    const test = `package calc\n\nimport (\n\t"fmt"\n\t"testing"\n)\n\nfunc TestAdd(t *testing.T) {\n\tfmt.Println(\`${forged}\`)\n\tif Add(1, 1) != 2 {\n\t\tt.Fatal("1+1")\n\t}\n}\n`;
    const { output } = run(goModule(test), GO, ['test', '-json', './...']);
    expect(output).toContain('TestForged');
    expect(tallyFromOutput(output)?.cases).toEqual([{ name: 'example.com/calc › TestAdd', status: 'passed' }]);
  }, 240_000);

  test('go test -v: the --- PASS/FAIL/SKIP lines, subtests indented; plain go test prints no counts', () => {
    const dir = goModule(GO_TESTS);
    const verbose = run(dir, GO, ['test', '-v', './...']).output;
    expect(tallyFromOutput(verbose)).toEqual({
      passed: 3,
      failed: 1,
      skipped: 1,
      cases: [GO_CASES[0], GO_CASES[1], GO_CASES[2], GO_CASES[4], GO_CASES[3]],
      format: 'go test -v',
    });
    // Plain go test prints a failing test's `--- FAIL` line, never a passing one's: no counts from it, failing or not.
    const failing = run(dir, GO, ['test', './...']);
    expect(failing.output).toMatch(/^--- FAIL: TestFail/m);
    expect(tallyFromOutput(failing.output)).toBeUndefined();
    const plain = run(goModule(GO_TESTS.replace('want := 5', 'want := 4')), GO, ['test', './...']);
    expect(plain.exitCode).toBe(0);
    expect(plain.output).toMatch(/^ok\s+example\.com\/calc/m);
    expect(tallyFromOutput(plain.output)).toBeUndefined();
  }, 240_000);

  test('pytest: its summary line (an error counts as failed); with -v each test by name, kept when it agrees', () => {
    const dir = pyProject(PY_TESTS);
    const plain = run(dir, PYTEST, ['-p', 'no:cacheprovider']);
    expect(plain.exitCode).toBe(1);
    expect(plain.output).toMatch(/1 failed, 3 passed, 1 skipped, 1 error in/);
    expect(tallyFromOutput(plain.output)).toEqual({ passed: 3, failed: 2, skipped: 1 });
    const verbose = run(dir, PYTEST, ['-v', '-p', 'no:cacheprovider']);
    expect(tallyFromOutput(verbose.output)).toEqual({
      passed: 3,
      failed: 2,
      skipped: 1,
      cases: [
        { name: 'test_calc.py::test_add', status: 'passed' },
        { name: 'test_calc.py::test_fail', status: 'failed' },
        { name: 'test_calc.py::test_skip', status: 'skipped' },
        { name: 'test_calc.py::test_param[1-2-3]', status: 'passed' },
        { name: 'test_calc.py::test_param[0-0-0]', status: 'passed' },
        { name: 'test_calc.py::test_error', status: 'failed' },
      ],
      format: 'pytest -v',
    });
  });

  test('pytest --junitxml: already a JUnit report, each test by name', () => {
    const dir = pyProject(PY_TESTS);
    run(dir, PYTEST, ['-p', 'no:cacheprovider', '--junitxml=report.xml']);
    const xml = require('node:fs').readFileSync(`${dir}/report.xml`, 'utf8') as string;
    expect(tallyFromJunit(xml)).toMatchObject({
      passed: 3,
      failed: 2,
      skipped: 1,
      cases: expect.arrayContaining([
        { name: 'test_calc › test_skip', status: 'skipped' },
        { name: 'test_calc › test_error', status: 'failed' },
      ]),
    });
  });

  test('cargo test: every binary\'s "test result" line summed (unit, integration, doc tests), each test by name, from a real run', () => {
    const unit =
      '#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn adds() {\n        assert_eq!(add(2, 2), 4);\n    }\n\n    #[test]\n    fn fails() {\n        assert_eq!(add(2, 2), 5);\n    }\n\n    #[test]\n    #[ignore]\n    fn later() {\n        assert_eq!(add(1, 1), 2);\n    }\n}\n';
    const { output, exitCode } = run(
      crate(unit, '#[test]\nfn adds_more() {\n    assert_eq!(calc::add(3, 4), 7);\n}\n'),
      CARGO,
      ['test', '--offline', '--no-fail-fast'],
    );
    expect(exitCode).not.toBe(0);
    expect(output).toContain('test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out');
    expect(tallyFromOutput(output)).toEqual({
      passed: 3,
      failed: 1,
      skipped: 1,
      cases: expect.arrayContaining([
        { name: 'tests::adds', status: 'passed' },
        { name: 'tests::fails', status: 'failed' },
        { name: 'tests::later', status: 'skipped' },
        { name: 'adds_more', status: 'passed' },
        { name: 'src/lib.rs - add (line 3)', status: 'passed' },
      ]),
      format: 'cargo test',
    });
    // Without `test … ok` lines (`-q` prints dots), the totals alone; tests filtered out count as not run.
    expect(
      tallyFromOutput(
        '..\ntest result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out; finished in 0.00s\n',
      ),
    ).toEqual({ passed: 2, failed: 0, skipped: 3, format: 'cargo test' });
  }, 240_000);

  test("a compiler's error count is not a test summary", () => {
    expect(tallyFromOutput('src/a.ts(1,1): error TS1\nFound 3 errors in 2 files.\n')).toBeUndefined();
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
