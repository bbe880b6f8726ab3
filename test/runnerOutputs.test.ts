import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { canaryVerdict, isTestFile, outcomeOf, withMutant } from '../judge/canary';
import { tallyFromJunit, tallyFromOutput } from '../judge/tally';
import { CARGO, crate, GO, GO_TESTS, goModule, PYTEST, PY_TESTS, pyProject, run } from './fixtures/runners';

// The runners Nightshift reads, run for real (go, pytest, cargo: what `scripts/setup.sh --docker` installs): their
// counts, each test by name, and the canaries they must report failing. Not in the unit tier (Node and git only).

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

// The canary for Go and pytest, judged as the check would: a mutant planted in a real test file, run by the real
// runner, must be reported failing and every other test as in the plain run (by name: `go test -json`, `pytest -v`).
describe('canaries for go test and pytest, run for real', () => {
  const GO_TEST = `package calc

import "testing"

func TestAdd(t *testing.T) {
\tif got := Add(2, 2); got != 4 {
\t\tt.Errorf("Add(2, 2) = %d", got)
\t}
}

func TestNames(t *testing.T) {
\twant := "four"
\tif got := Name(4); got != want {
\t\tt.Errorf("Name(4) = %q", got)
\t}
}

func TestTable(t *testing.T) {
\tfor _, c := range []struct{ a, b, want int }{{1, 2, 3}} {
\t\tif got := Add(c.a, c.b); got != c.want {
\t\t\tt.Errorf("Add = %d", got)
\t\t}
\t}
}
`;
  const goModuleWithName = (test: string, add?: string) => {
    const dir = goModule(test, add);
    writeFileSync(path.join(dir, 'name.go'), 'package calc\n\nfunc Name(n int) string { return "four" }\n');
    return dir;
  };

  test('Go: `if got != 4 {` and `want := "four"` host a mutant (a copy under a new name); a table-driven test does not', () => {
    expect(isTestFile('pkg/calc_test.go')).toBe(true);
    const planted = withMutant('calc_test.go', GO_TEST, GO_TEST, () => 0);
    expect(planted).toEqual({
      content: GO_TEST.replace(
        '}\n\nfunc TestNames',
        '}\n\nfunc TestAdd_2(t *testing.T) {\n\tif got := Add(2, 2); got != 5 {\n\t\tt.Errorf("Add(2, 2) = %d", got)\n\t}\n}\n\nfunc TestNames',
      ),
    });
    const second = withMutant('calc_test.go', GO_TEST, GO_TEST, (n) => n - 1) as { content: string };
    expect(second.content).toContain('func TestNames_2(t *testing.T) {\n\twant := "ourf"\n');
    expect(second.content).not.toContain('TestTable_2');
  });

  test.each([
    ['the first', () => 0],
    ['the last', (n: number) => n - 1],
  ])(
    'Go: %s mutant compiles, `go test -json` reports it failing by name and every other test as before; with a lying harness it passes',
    (_which, pick) => {
      const dir = goModuleWithName(GO_TEST);
      const plainRun = run(dir, GO, ['test', '-json', './...']);
      const plain = outcomeOf(plainRun.exitCode, tallyFromOutput(plainRun.output), plainRun.output);
      expect(plain.tally).toMatchObject({ passed: 3, failed: 0 });
      writeFileSync(
        path.join(dir, 'calc_test.go'),
        (withMutant('calc_test.go', GO_TEST, GO_TEST, pick) as { content: string }).content,
      );
      const canaryRun = run(dir, GO, ['test', '-json', './...']);
      const withCanary = outcomeOf(canaryRun.exitCode, tallyFromOutput(canaryRun.output), canaryRun.output);
      expect(withCanary.tally).toMatchObject({ passed: 3, failed: 1 });
      expect(canaryVerdict(1, plain, withCanary)).toEqual({ reported: true });
      // A harness that exits 0 whatever the tests found (an os.Exit(0) in TestMain): the canary is not reported.
      writeFileSync(
        path.join(dir, 'main_test.go'),
        'package calc\n\nimport (\n\t"os"\n\t"testing"\n)\n\nfunc TestMain(m *testing.M) { m.Run(); os.Exit(0) }\n',
      );
      const lying = run(dir, GO, ['test', '-json', './...']);
      expect(canaryVerdict(1, plain, outcomeOf(lying.exitCode, tallyFromOutput(lying.output), lying.output))).toEqual({
        reported: false,
      });
    },
    240_000,
  );

  test('pytest: the mutant (test_add_2) is reported failing by name with -v, and by count without', () => {
    const py =
      'from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n\ndef test_zero():\n    assert add(0, 0) == 0\n';
    for (const args of [['-v'], []]) {
      const dir = pyProject(py);
      const plainRun = run(dir, PYTEST, ['-p', 'no:cacheprovider', ...args]);
      const plain = outcomeOf(plainRun.exitCode, tallyFromOutput(plainRun.output), plainRun.output);
      expect(plain.tally).toMatchObject({ passed: 2, failed: 0, ...(args.length ? { format: 'pytest -v' } : {}) });
      writeFileSync(
        path.join(dir, 'test_calc.py'),
        (withMutant('test_calc.py', py, py, () => 0) as { content: string }).content,
      );
      const canaryRun = run(dir, PYTEST, ['-p', 'no:cacheprovider', ...args]);
      const withCanary = outcomeOf(canaryRun.exitCode, tallyFromOutput(canaryRun.output), canaryRun.output);
      if (args.length) expect(withCanary.cases).toContainEqual({ name: 'test_calc.py::test_add_2', status: 'failed' });
      expect(canaryVerdict(1, plain, withCanary)).toEqual({ reported: true });
    }
  });
});

test('cargo test: a mutant of an integration test (tests/*.rs) compiles, runs and is reported failing by name; an #[ignore]d test hosts none', () => {
  expect(isTestFile('tests/more.rs')).toBe(true);
  expect(isTestFile('src/lib.rs')).toBe(false);
  const rs =
    '#[test]\n#[ignore]\nfn later() {\n    assert_eq!(calc::add(1, 1), 2);\n}\n\n#[test]\nfn adds_more() {\n    let got = calc::add(3, 4);\n    assert_eq!(got, 7);\n}\n';
  const planted = withMutant('tests/more.rs', rs, rs, () => 0);
  expect(planted).toEqual({
    content: `${rs}\n#[test]\nfn adds_more_2() {\n    let got = calc::add(3, 4);\n    assert_eq!(got, 8);\n}\n`,
  });
  const dir = crate('', rs);
  const plainRun = run(dir, CARGO, ['test', '--offline']);
  const plain = outcomeOf(plainRun.exitCode, tallyFromOutput(plainRun.output), plainRun.output);
  expect(plain.tally).toMatchObject({ passed: 2, failed: 0, skipped: 1 });
  writeFileSync(path.join(dir, 'tests/more.rs'), (planted as { content: string }).content);
  const canaryRun = run(dir, CARGO, ['test', '--offline', '--no-fail-fast']);
  const withCanary = outcomeOf(canaryRun.exitCode, tallyFromOutput(canaryRun.output), canaryRun.output);
  expect(withCanary.cases).toContainEqual({ name: 'adds_more_2', status: 'failed' });
  expect(canaryVerdict(1, plain, withCanary)).toEqual({ reported: true });
}, 240_000);
