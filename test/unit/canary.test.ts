import { canaryVerdict, withMutant } from '../../judge/canary';
import { casesFromOutput } from '../../judge/tally';
import { JUDGED_APP } from '../fixtures/judgedApp';
import { GO_MODULE_FILES } from '../../testbed/goModule';
import { PYTHON_PROJECT_FILES } from '../../testbed/pythonProject';

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

describe('at the base, never a mutant of a test that fails there', () => {
  // The base's bug: clamp returns lo above the range. A mutant of test_clamp_above with the file's other expected
  // value (0) asserts what the bug returns: it passes, and the canary would look unreported (a flaky "off").
  const PY = PYTHON_PROJECT_FILES['tests/test_clamp.py'];
  const GO = GO_MODULE_FILES['mathx_test.go'];
  const pyFailing = ['tests/test_clamp.py::test_clamp_above', 'tests/test_clamp.py::test_clamp_all'];
  const goFailing = ['example.com/mathx › TestClampAbove', 'example.com/mathx › TestClampAll'];
  const every = (file: string, text: string, failing: string[]) =>
    [0, 1, 2].map((i) => withMutant(file, text, text, (n) => Math.min(i, n - 1), failing));

  test('pytest and go test -json names: whichever the pick, the copy is of the passing test', () => {
    for (const planted of every('tests/test_clamp.py', PY, pyFailing))
      expect((planted as { content: string }).content).toContain(
        'def test_clamp_below_2():\n    assert clamp(-5, 0, 10) == 10',
      );
    for (const planted of every('mathx_test.go', GO, goFailing))
      expect((planted as { content: string }).content).toContain('func TestClampBelow_2(t *testing.T) {');
    // Without the names, a pick can land on the failing test: the copy a buggy clamp passes.
    expect((withMutant('tests/test_clamp.py', PY, PY, (n) => n - 1) as { content: string }).content).toContain(
      'def test_clamp_above_2():\n    assert clamp(15, 0, 10) == 0',
    );
  });

  test('a subtest or a parametrized case names its test; a title names a JS test; a file of only failing ones still hosts one', () => {
    // Every test with an expected value fails: a copy of a failing one, as before (it fails too, unless by chance).
    const copies = (planted: object) => (planted as { content: string }).content.match(/func \w+_2\(/g);
    for (const planted of every('mathx_test.go', GO, ['example.com/mathx › TestClampBelow/negative', ...goFailing]))
      expect(copies(planted)).toHaveLength(1);
    expect(
      (
        every('tests/test_clamp.py', PY, ['tests/test_clamp.py::test_clamp_below[0]', ...pyFailing])[2] as {
          content: string;
        }
      ).content,
    ).toContain('def test_clamp_above_2():');
    const js =
      "test('adds', () => assert.strictEqual(add(2, 3), 5));\ntest('subtracts', () => assert.strictEqual(sub(3, 2), 1));\n";
    for (const planted of every('a.test.js', js, ['test/a.test.js › adds']))
      expect((planted as { content: string }).content.split('\n')[2]).toBe(
        "test('subtracts', () => assert.strictEqual(sub(3, 2), 5));",
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
