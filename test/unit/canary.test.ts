import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { canaryVerdict, isTestFile, outcomeOf, withMutant } from '../../judge/canary';
import { casesFromOutput, tallyFromOutput } from '../../judge/tally';
import { CARGO, crate, GO, goModule, PYTEST, pyProject, run } from '../fixtures/runners';
import { JUDGED_APP } from '../fixtures/judgedApp';

const first = () => 0;
const TEST_FILE = JUDGED_APP['test/add.test.js'];

describe("withMutant: a copy of one of the base's tests, under its title, with its expected value changed", () => {
  test("node:test: the copy follows the original, same title, another of the file's expected values", () => {
    const planted = withMutant('test/add.test.js', TEST_FILE, TEST_FILE, first);
    expect(planted).toEqual({
      content: TEST_FILE.replace(
        "test('adds zero', () => assert.strictEqual(add(0, 0), 0));",
        "test('adds zero', () => assert.strictEqual(add(0, 0), 0));\ntest('adds zero', () => assert.strictEqual(add(0, 0), 4));",
      ),
    });
  });

  test('a number with no other of its kind in the file becomes another number; a string another string; a boolean the other', () => {
    const one = (want: string) => `test('t', () => assert.strictEqual(f(), ${want}));\n`;
    const copy = (want: string) =>
      'content' in withMutant('a.test.js', one(want), one(want), first)
        ? (withMutant('a.test.js', one(want), one(want), first) as { content: string }).content.split('\n')[1]
        : '';
    expect(copy('41')).toBe("test('t', () => assert.strictEqual(f(), 42));");
    expect(copy("'abc'")).toBe('test(\'t\', () => assert.strictEqual(f(), "bca"));');
    expect(copy('true')).toBe("test('t', () => assert.strictEqual(f(), false));");
  });

  test("jest's expect(…).toBe(expression) inside a describe: the expression bracketed, the indent kept", () => {
    const text =
      "describe('t', () => {\n  it('reads', () => { expect(read()).toBe(fs.readFileSync('x', 'utf8')); });\n});\n";
    expect(withMutant('a.spec.js', text, text, first)).toEqual({
      content:
        "describe('t', () => {\n  it('reads', () => { expect(read()).toBe(fs.readFileSync('x', 'utf8')); });\n  it('reads', () => { expect(read()).toBe([fs.readFileSync('x', 'utf8')]); });\n});\n",
    });
  });

  test('pytest: a function copied under a new name (a second def would replace the first); a unittest method in its class', () => {
    const py =
      'def test_add():\n    assert add(2, 3) == 5\n\n\nclass TestAdd(unittest.TestCase):\n    def test_zero(self):\n        self.assertEqual(add(0, 0), 0)\n\n    def test_other(self):\n        pass\n';
    expect(withMutant('test_add.py', py, py, first)).toEqual({
      content: py.replace('== 5\n', '== 5\n\ndef test_add_2():\n    assert add(2, 3) == 0\n'),
    });
    expect(withMutant('test_add.py', py, py, (n) => n - 1)).toEqual({
      content: py.replace(
        '(add(0, 0), 0)\n',
        '(add(0, 0), 0)\n\n    def test_zero_2(self):\n        self.assertEqual(add(0, 0), 5)\n',
      ),
    });
  });

  test('only tests the base has, as the base has them; none is a reason, not a pass', () => {
    const changed = TEST_FILE.replace(/assert\.strictEqual\(.*\)\);$/gm, 'assert.ok(true));');
    expect(withMutant('test/add.test.js', changed, TEST_FILE, first)).toEqual({
      why: "none of the base's tests with an expected value is in it as the base has it",
    });
    expect(withMutant('test/add.test.js', changed, changed, first)).toEqual({
      why: "the base's version has no test that compares with an expected value",
    });
    // A test the agent added does not host a canary; the base's tests beside it still do.
    const added = `${TEST_FILE}test('adds 1 and 1', () => assert.strictEqual(add(1, 1), 2));\n`;
    expect((withMutant('test/add.test.js', added, TEST_FILE, (n) => n - 1) as { content: string }).content).toContain(
      "test('is a function of two numbers', () => assert.strictEqual(add.length, 2));\ntest('is a function of two numbers', () => assert.strictEqual(add.length, ",
    );
  });
});

describe("canaryVerdict: each canary failing, every other test as in the check's own run", () => {
  const named = (exitCode: number, ...cases: [string, 'passed' | 'failed'][]) => ({
    exitCode,
    cases: cases.map(([name, status]) => ({ name, status })),
  });
  const plain = named(0, ['a', 'passed'], ['b', 'passed']);
  test('by name: the canary failing and nothing else changed is reported', () => {
    expect(canaryVerdict(1, plain, named(1, ['a', 'passed'], ['a', 'failed'], ['b', 'passed']))).toEqual({
      reported: true,
    });
  });
  test('by name: the canary passing is not reported', () => {
    expect(canaryVerdict(1, plain, named(0, ['a', 'passed'], ['a', 'passed'], ['b', 'passed']))).toEqual({
      reported: false,
    });
  });
  test('by name: the canary failing while another test fails too is a change, naming it', () => {
    expect(canaryVerdict(1, plain, named(1, ['a', 'passed'], ['a', 'failed'], ['b', 'failed']))).toEqual({
      reported: true,
      changed: '"b" passed 1 → 0',
    });
  });
  test('by count: passes that fell are a change (7 → 1); no counts at all in the canary run is one too', () => {
    const tally = (passed: number, failed: number) => ({
      exitCode: failed ? 1 : 0,
      tally: { passed, failed, skipped: 0 },
    });
    expect(canaryVerdict(1, tally(7, 0), tally(7, 1))).toEqual({ reported: true });
    expect(canaryVerdict(1, tally(7, 0), tally(1, 7))).toEqual({
      reported: true,
      changed: 'passes 7 → 1, failures 0 → 7, skips 0 → 0, with 1 canaries added',
    });
    expect(canaryVerdict(1, tally(7, 0), tally(8, 0))).toEqual({ reported: false });
    expect(canaryVerdict(1, tally(7, 0), { exitCode: 1 })).toEqual({
      reported: true,
      changed: 'the run with canaries printed no test counts',
    });
  });
});

test("casesFromOutput: node's TAP, tests by name; a suite or a test with subtests left out; skips", () => {
  const tap = [
    'TAP version 13',
    '# Subtest: adds zero',
    'ok 1 - adds zero',
    '  ---',
    '  ...',
    'not ok 2 - adds zero',
    '# Subtest: suite',
    '    ok 1 - inner',
    '    ok 2 - sk # SKIP',
    'ok 3 - suite',
    '1..3',
    '# pass 2',
  ].join('\n');
  expect(casesFromOutput(tap)).toEqual([
    { name: 'adds zero', status: 'passed' },
    { name: 'adds zero', status: 'failed' },
    { name: 'inner', status: 'passed' },
    { name: 'sk', status: 'skipped' },
  ]);
  expect(casesFromOutput('3 passed in 0.1s')).toBeUndefined();
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
