import { randomInt } from 'node:crypto';
import picomatch from 'picomatch';
import type { ReviewFinding } from '../contracts/run';
import { paths, type RunRepo } from '../git/git';
import { layOver } from './layFiles';
import { casesFromOutput, checkTally, type TestStatus, type TestTally } from './tally';

// A lying harness is caught by a canary (docs/checks.md): a test that must fail, planted for one run of the check.
// A canary the agent's code could tell apart from the real tests would be let through while the real ones are
// neutralised, so a canary is a mutant of one of the base's own tests: a copy of it, under the same title and right
// after it, whose expected value is changed to one the code cannot return when the original passes. The run with
// canaries must report each one failing and every other test as the plain run did: a harness that behaves
// differently when the test files differ is lying too.

/** Test files, by the names the runners look for by default. Installed and vendored code is not the repo's. */
const TEST_FILE = picomatch(
  [
    '**/*.{test,spec}.{js,cjs,mjs,jsx,ts,cts,mts,tsx}',
    '**/test_*.py',
    '**/*_test.py',
    '**/*_test.go',
    '**/tests/**/*.rs',
  ],
  { dot: true },
);
const NOT_THE_REPOS = /(^|\/)(node_modules|vendor|site-packages|\.venv|venv)\//;
/** A test file of the repo's own, by the runners' conventions; anything else runs as code under test. */
export const isTestFile = (file: string): boolean => TEST_FILE(file) && !NOT_THE_REPOS.test(file);
/** At most this many files get a canary: enough to reach every test process of a suite, bounded for a huge one. */
const MAX_CANARY_FILES = 200;

/** Regular files at `commit` named as tests. */
export async function testFilesAt(git: RunRepo['git'], commit: string): Promise<string[]> {
  const entries = paths(await git(['ls-tree', '-r', '-z', '--full-tree', commit]));
  return entries
    .map((e) => /^(100644|100755) blob [0-9a-f]+\t(.*)$/s.exec(e)?.[2])
    .filter((f): f is string => f !== undefined && isTestFile(f))
    .slice(0, MAX_CANARY_FILES);
}

/** One test of a file that a mutant can be made of: its whole statement, and where its expected value is in it. */
interface Source {
  statement: string;
  /** The expected value's literal, by offset in `statement`. */
  at: number;
  literal: string;
  /**
   * Python and Go: the test function's name, which a copy must not reuse (a second `def` replaces the first; Go
   * refuses a second `func` of the name).
   */
  fn?: { keyword: 'def' | 'func' | 'fn'; name: string };
}

const JS_TEST = /(^|[\n;{}])[ \t]*((?:it|test)(?:\.only)?)\s*\(\s*(['"])(?:\\.|(?!\3)[^\\\n])*\3\s*,/g;
const JS_ASSERTION =
  /\b(?:\w+\.(?:strictEqual|equal|deepStrictEqual|deepEqual)|expect\s*\([\s\S]*?\)\s*\.(?:toBe|toEqual|toStrictEqual))\s*\(/g;
const PY_TEST = /^([ \t]*)def (test\w*)\s*\([^)]*\)[^:\n]*:[ \t]*\n/gm;
const PY_ASSERTION = /^[ \t]*(?:assert .+ == |self\.assert(?:Equal|Equals)\(.+, *)(.+?)\)?[ \t]*$/gm;
const GO_TEST = /^func (Test\w*)\(\s*\w+ \*testing\.T\s*\)\s*\{/gm;
/** `if got != 4 {`, `if got := Add(2, 2); got != "four" {` (no `&&`, which could keep the copy passing). */
const GO_COMPARISON = /^[ \t]*if [^\n&]*!=[ \t]*([^\n{}&|]+?)[ \t]*\{[ \t]*$/gm;
/** `want := 4`, `expected = "four"`. */
const GO_WANT = /^[ \t]*(?:want|wanted|expected|expect|exp)\w*[ \t]*:?=[ \t]*([^\n]+?)[ \t]*$/gm;
/** A Rust `#[test]` function (its other attributes with it), as rustfmt lays it out. */
const RS_TEST = /^[ \t]*#\[test\][ \t]*\n(?:[ \t]*#\[[^\n]*\][ \t]*\n)*[ \t]*fn (\w+)\s*\(\s*\)[^{\n]*\{/gm;
const NUMBER = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const STRING = /^(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")$/;

/** The index just past the bracket that closes the one at `open`, skipping strings and comments; -1 when none does. */
function closing(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === '`') {
      for (i++; i < text.length && text[i] !== c; i++) if (text[i] === '\\') i++;
    } else if (c === '/' && text[i + 1] === '/') i = text.indexOf('\n', i) < 0 ? text.length : text.indexOf('\n', i);
    else if (c === '/' && text[i + 1] === '*')
      i = text.indexOf('*/', i + 2) < 0 ? text.length : text.indexOf('*/', i + 2) + 1;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c) && --depth === 0) return i + 1;
  }
  return -1;
}

/** The top-level arguments of the call whose `(` is at `open`: each with its offset. */
function callArguments(text: string, open: number): { at: number; text: string }[] {
  const end = closing(text, open);
  if (end < 0) return [];
  const args: { at: number; text: string }[] = [];
  let [start, depth] = [open + 1, 0];
  for (let i = open + 1; i < end - 1; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === '`') for (i++; i < end && text[i] !== c; i++) i += text[i] === '\\' ? 1 : 0;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === ',' && depth === 0) {
      args.push({ at: start, text: text.slice(start, i) });
      start = i + 1;
    }
  }
  args.push({ at: start, text: text.slice(start, end - 1) });
  return args;
}

const isPrimitive = (literal: string) =>
  NUMBER.test(literal) || STRING.test(literal) || /^(true|false|True|False)$/.test(literal);

/**
 * An expected value a mutant can change, trimmed, with its offset: a number, a string or a boolean literal, or, for
 * a strict comparison, any expression (it becomes `[expression]`, which nothing strictly equal to it equals).
 */
function expectedValue(
  arg: { at: number; text: string },
  strict: boolean,
): { at: number; literal: string } | undefined {
  const literal = arg.text.trim();
  if (!literal || (!isPrimitive(literal) && !strict)) return undefined;
  return { at: arg.at + arg.text.indexOf(literal), literal };
}

/**
 * node:test, jest, mocha and vitest tests whose title is a plain string and whose assertion compares with a literal.
 */
function jsSources(text: string): Source[] {
  const sources: Source[] = [];
  for (const m of text.matchAll(JS_TEST)) {
    const start = m.index + m[1].length + m[0].slice(m[1].length).search(/\S/);
    const end = closing(text, text.indexOf('(', start + m[2].length));
    if (end < 0) continue;
    const statement = text.slice(start, text[end] === ';' ? end + 1 : end);
    for (const a of statement.matchAll(JS_ASSERTION)) {
      const args = callArguments(statement, a.index + a[0].length - 1);
      const expected = a[0].startsWith('expect') ? args[0] : args[1];
      const want = expected && expectedValue(expected, !/\.(equal|deepEqual)\s*\($/.test(a[0]));
      if (want) {
        sources.push({ statement, ...want });
        break;
      }
    }
  }
  return sources;
}

/** pytest functions (and unittest methods) with an `assert … == literal` or `self.assertEqual(…, literal)` line. */
function pySources(text: string): Source[] {
  const sources: Source[] = [];
  for (const m of text.matchAll(PY_TEST)) {
    // The body: the lines after the `def` up to the first one indented no deeper than it.
    const lines: string[] = [];
    for (const line of text.slice(m.index + m[0].length).split('\n')) {
      if (line.trim() && line.length - line.trimStart().length <= m[1].length) break;
      lines.push(line);
    }
    while (lines.length && !lines[lines.length - 1].trim()) lines.pop();
    const block = m[0] + lines.join('\n');
    for (const a of block.slice(m[0].length).matchAll(PY_ASSERTION)) {
      const literal = a[1].trim();
      if (!isPrimitive(literal)) continue;
      sources.push({
        statement: block,
        at: m[0].length + a.index + a[0].lastIndexOf(literal),
        literal,
        fn: { keyword: 'def', name: m[2] },
      });
      break;
    }
  }
  return sources;
}

/**
 * Go tests (`func TestX(t *testing.T) {`, gofmt's layout) that compare with a literal: `if got != 4 {`, or `want := 4`.
 * A number, a double-quoted string or a boolean: a rune or a raw string is left alone (its copy might not compile).
 */
function goSources(text: string): Source[] {
  const sources: Source[] = [];
  for (const m of text.matchAll(GO_TEST)) {
    const end = closing(text, m.index + m[0].length - 1);
    if (end < 0) continue;
    const statement = text.slice(m.index, end);
    if (/\.Skip(Now|f)?\(/.test(statement)) continue; // its copy would be skipped, not failing
    const found = [...statement.matchAll(GO_COMPARISON), ...statement.matchAll(GO_WANT)]
      .map((a) => ({ at: a.index + a[0].lastIndexOf(a[1]), literal: a[1] }))
      .filter((a) => isPrimitive(a.literal) && !a.literal.startsWith("'") && !/^(True|False)$/.test(a.literal))
      .sort((a, b) => a.at - b.at)[0];
    if (found) sources.push({ statement, ...found, fn: { keyword: 'func', name: m[1] } });
  }
  return sources;
}

/**
 * Rust tests of a `tests/` file (cargo's integration tests) with `assert_eq!(…, <literal>)`: copied as `name_2`. An
 * `#[ignore]`d or `#[should_panic]` test is left alone (its copy would not fail).
 */
function rsSources(text: string): Source[] {
  const sources: Source[] = [];
  for (const m of text.matchAll(RS_TEST)) {
    if (/#\[(ignore|should_panic)\b/.test(m[0])) continue;
    const end = closing(text, m.index + m[0].length - 1);
    if (end < 0) continue;
    const statement = text.slice(m.index, end);
    for (const a of statement.matchAll(/\bassert_eq!\s*\(/g)) {
      const want = callArguments(statement, a.index + a[0].length - 1)[1];
      const found = want && expectedValue(want, false);
      if (found && !found.literal.startsWith("'") && !/^(True|False)$/.test(found.literal)) {
        sources.push({ statement, ...found, fn: { keyword: 'fn', name: m[1] } });
        break;
      }
    }
  }
  return sources;
}

function sourcesIn(file: string, text: string): Source[] {
  if (file.endsWith('.py')) return pySources(text);
  if (file.endsWith('.go')) return goSources(text);
  return file.endsWith('.rs') ? rsSources(text) : jsSources(text);
}

/**
 * A literal of the same kind as `literal` that differs from it: another of the file's expected values when one
 * differs, else one made up; an expression in brackets.
 */
function otherValue(literal: string, others: string[], pick: (n: number) => number): string {
  if (!isPrimitive(literal)) return `[${literal}]`;
  // An integer stays an integer (Go refuses 2.5 where an int is compared).
  const kind = (l: string) =>
    NUMBER.test(l) ? (/^-?\d+$/.test(l) ? 'integer' : 'number') : STRING.test(l) ? 'string' : 'boolean';
  const value = (l: string) => (NUMBER.test(l) ? Number(l) : kind(l) === 'string' ? l.slice(1, -1) : l.toLowerCase());
  const candidates = [
    ...new Set(others.filter((o) => isPrimitive(o) && kind(o) === kind(literal) && value(o) !== value(literal))),
  ];
  if (candidates.length) return candidates[pick(candidates.length)];
  if (NUMBER.test(literal)) return String(Number(literal) + 1);
  if (kind(literal) === 'boolean') return { true: 'false', false: 'true', True: 'False', False: 'True' }[literal]!;
  const s = String(value(literal));
  return JSON.stringify(s.length > 1 && s.slice(1) + s[0] !== s ? s.slice(1) + s[0] : `${s}s`);
}

/** A source's test as runners name it: its function (Go, Python, Rust), or its title (JS). */
function testName(source: Source): string | undefined {
  if (source.fn) return source.fn.name;
  return /^[ \t]*(?:it|test)(?:\.only)?\s*\(\s*(['"])((?:\\.|(?!\1)[^\\\n])*)\1/.exec(source.statement)?.[2];
}

/**
 * Whether a runner's case names the source's test: `pkg › TestX` (and its subtests `pkg › TestX/sub`),
 * `tests/t.py::test_x` (and `test_x[param]`), `mod::tests::x`, a JUnit `suite › title`, or the title alone.
 */
function names(caseName: string, test: string): boolean {
  return [caseName, caseName.split(' › ').pop()!, caseName.split('::').pop()!].some(
    (n) => n === test || n.startsWith(`${test}/`) || n.startsWith(`${test}[`),
  );
}

/**
 * `text` (a test file as the checks run it) with a mutant of one of the base's tests in it: a test that also stands,
 * unchanged, in `baseText` (the base's version of the file), copied right after itself under the same title, with
 * its expected value changed. A test in `failing` (the tests the plain run reported failing) only when the file has no
 * other: its new expected value could be the very one the code gets wrong, and the mutant would pass. Why not, when
 * no test of the base is there to copy.
 */
export function withMutant(
  file: string,
  text: string,
  baseText: string,
  pick: (n: number) => number = randomInt,
  failing: string[] = [],
): { content: string } | { why: string } {
  const ofBase = sourcesIn(file, baseText);
  const unchanged = sourcesIn(file, text).filter((s) => ofBase.some((b) => b.statement === s.statement));
  const passing = unchanged.filter((s) => {
    const test = testName(s);
    return !test || !failing.some((c) => names(c, test));
  });
  // A file whose every such test fails still hosts one: a copy that fails too shows the runner reports it.
  const sources = passing.length ? passing : unchanged;
  if (!sources.length)
    return {
      why: ofBase.length
        ? `none of the base's tests with an expected value is in it as the base has it`
        : `the base's version has no test that compares with an expected value`,
    };
  // A literal changed is the least tellable from the base's own assertions; an expression bracketed is the fallback.
  const literals = sources.filter((s) => isPrimitive(s.literal));
  const source = (literals.length ? literals : sources)[pick((literals.length ? literals : sources).length)];
  // Another of the file's expected values, failing tests' included: the least tellable from the file itself.
  const value = otherValue(
    source.literal,
    unchanged.map((s) => s.literal),
    pick,
  );
  let copy = source.statement.slice(0, source.at) + value + source.statement.slice(source.at + source.literal.length);
  if (source.fn) {
    const { keyword, name } = source.fn;
    let n = 2;
    while (new RegExp(`\\b${keyword} ${name}_${n}\\b`).test(text)) n++;
    copy = copy.replace(`${keyword} ${name}`, `${keyword} ${name}_${n}`);
  }
  const at = text.indexOf(source.statement);
  const lineEnd =
    text.indexOf('\n', at + source.statement.length) < 0
      ? text.length
      : text.indexOf('\n', at + source.statement.length);
  // A JS copy starts a line of its own with the original's indent; a Python or Go one is a whole block.
  const indent = source.fn ? '\n' : (/^[ \t]*$/.exec(text.slice(text.lastIndexOf('\n', at - 1) + 1, at))?.[0] ?? '');
  return { content: `${text.slice(0, lineEnd)}\n${indent}${copy}${text.slice(lineEnd)}` };
}

/** The files a canary run planted mutants in, and the ones it could not, with why. */
export interface CanaryRun {
  files: string[];
  unplanted: { file: string; why: string }[];
}

/** A file of `commit` and its kind: a regular file's text, or what stands there instead. */
async function fileAt(
  repo: RunRepo,
  commit: string,
  file: string,
): Promise<{ text: string; mode: number } | { why: string }> {
  const entry = await repo
    .git(['--literal-pathspecs', 'ls-tree', '-z', '--full-tree', commit, '--', file])
    .catch(() => '');
  const mode = /^(\d+) (\w+) /.exec(entry);
  if (!mode) return { why: 'it is not in the change' };
  if (mode[1] === '120000')
    return { why: 'it is a symbolic link in the change (a canary is never written through a link)' };
  if (!/^100(644|755)$/.test(mode[1])) return { why: `it is not a regular file in the change (a ${mode[2]})` };
  return { text: await repo.git(['cat-file', 'blob', `${commit}:${file}`]), mode: parseInt(mode[1], 8) & 0o755 };
}

/**
 * Plants a mutant in each of `files` (the base's test files where a canary was reported failing at the base), as
 * `commit` has them, of a test not in `failing`: read as git objects, never from the workspace, and written over
 * whatever stands at the path rather than through it. A file the change no longer has is looked for among the
 * change's other test files (a rename); one that is a link, or holds none of the base's tests as the base has them,
 * is left unplanted, with why.
 */
export async function plantCanaries(
  repo: RunRepo,
  baseCommit: string,
  commit: string,
  files: string[],
  failing: string[] = [],
): Promise<CanaryRun> {
  const run: CanaryRun = { files: [], unplanted: [] };
  const writes = [];
  const moved = new Set<string>();
  for (const file of files) {
    const base = await fileAt(repo, baseCommit, file);
    if ('why' in base) continue;
    let now = await fileAt(repo, commit, file);
    let rel = file;
    if ('why' in now && now.why === 'it is not in the change') {
      for (const other of (await testFilesAt(repo.git, commit)).filter((f) => !files.includes(f) && !moved.has(f))) {
        const candidate = await fileAt(repo, commit, other);
        if ('text' in candidate && 'content' in withMutant(other, candidate.text, base.text, randomInt, failing))
          [now, rel] = [candidate, other];
      }
      moved.add(rel);
    }
    const planted = 'text' in now ? withMutant(rel, now.text, base.text, randomInt, failing) : now;
    if ('why' in planted) {
      run.unplanted.push({ file, why: planted.why });
      continue;
    }
    writes.push({ rel, content: Buffer.from(planted.content), mode: 'mode' in now ? now.mode : 0o644 });
    run.files.push(rel);
  }
  await layOver(repo.workTree, writes);
  return run;
}

/** The planted files as `commit` has them again. */
export async function removeCanaries(repo: RunRepo, commit: string, canary: CanaryRun): Promise<void> {
  if (canary.files.length)
    await repo.git(['--literal-pathspecs', 'restore', `--source=${commit}`, '--worktree', '--', ...canary.files]);
}

/**
 * How one run of a check ended: its exit code, its counts, and each test's result by name where the runner names them.
 */
export interface TestOutcome {
  exitCode: number | null;
  tally?: TestTally;
  cases?: { name: string; status: TestStatus }[];
}

/** A run's outcome, from its JUnit report (named tests) or its output (node's TAP names its tests; else counts). */
export async function testOutcome(
  workspace: string,
  junit: string | undefined,
  exitCode: number | null,
  output: string,
): Promise<TestOutcome> {
  return outcomeOf(exitCode, (await checkTally(workspace, junit, output)).tally, output);
}

/** A run's outcome from its tally (read already) and its output. */
export function outcomeOf(exitCode: number | null, tally: TestTally | undefined, output: string): TestOutcome {
  const cases = tally?.cases ?? casesFromOutput(output);
  return { exitCode, ...(tally ? { tally } : {}), ...(cases ? { cases } : {}) };
}

/**
 * What a run with `planted` canaries got wrong against the plain run: the canaries not failing, other tests changed.
 */
export interface CanaryVerdict {
  reported: boolean;
  /** Set when the other tests did not report what they did in the plain run. */
  changed?: string;
}

function statusCounts(cases: { name: string; status: TestStatus }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const c of cases) counts.set(`${c.status}\0${c.name}`, (counts.get(`${c.status}\0${c.name}`) ?? 0) + 1);
  return counts;
}

/**
 * Whether the run with `planted` canaries reported each failing and every other test as `plain` did. What the run
 * with canaries may add to the plain run is `planted` more tests, failing: a test of the plain run that lost its
 * result (passed there, failed or missing here) or more tests than that is a change. By name when both runs name
 * their tests, else by count, else by the exit code alone.
 */
export function canaryVerdict(planted: number, plain: TestOutcome, withCanaries: TestOutcome): CanaryVerdict {
  if (plain.cases && withCanaries.cases) {
    const [before, after] = [statusCounts(plain.cases), statusCounts(withCanaries.cases)];
    const lost: string[] = [];
    let [added, failedMore] = [0, 0];
    for (const key of new Set([...before.keys(), ...after.keys()])) {
      const delta = (after.get(key) ?? 0) - (before.get(key) ?? 0);
      const [status, name] = key.split('\0');
      if (delta < 0) lost.push(`"${name}" ${status} ${before.get(key)} → ${after.get(key) ?? 0}`);
      else added += delta;
      if (delta > 0 && status === 'failed') failedMore += delta;
    }
    const changes = [
      ...lost.slice(0, 3),
      ...(lost.length > 3 ? [`and ${lost.length - 3} more`] : []),
      ...(added - lost.length > planted ? [`${added - planted} tests more than the canaries`] : []),
    ];
    return {
      reported: withCanaries.exitCode !== 0 && failedMore >= planted,
      ...(lost.length || added > planted + lost.length ? { changed: changes.join(', ') } : {}),
    };
  }
  const [a, b] = [plain.tally, withCanaries.tally];
  if (a && !b)
    return { reported: withCanaries.exitCode !== 0, changed: 'the run with canaries printed no test counts' };
  if (!a || !b) return { reported: withCanaries.exitCode !== 0 && plain.exitCode === 0 };
  const reported = withCanaries.exitCode !== 0 && b.failed - a.failed >= planted;
  const changed =
    b.passed < a.passed ||
    b.skipped < a.skipped ||
    b.passed + b.failed + b.skipped !== a.passed + a.failed + a.skipped + planted;
  return {
    reported,
    ...(changed
      ? {
          changed: `passes ${a.passed} → ${b.passed}, failures ${a.failed} → ${b.failed}, skips ${a.skipped} → ${b.skipped}, with ${planted} canaries added`,
        }
      : {}),
  };
}

/** For the log: what the run with canaries showed. */
export function describeVerdict(v: CanaryVerdict): string {
  if (!v.reported) return 'the canary PASSED: the harness reports success whatever the tests say';
  if (v.changed)
    return `the canary was reported failing, but the other tests CHANGED from the check's own run (${v.changed}): the harness behaves differently when the test files differ`;
  return "the canary was reported failing, as it must, and the other tests as in the check's own run";
}

/** The findings of a canary run: a canary not reported failing, other tests that changed, canaries never planted. */
export function canaryFindings(check: string, canary: CanaryRun, verdict: CanaryVerdict | undefined): ReviewFinding[] {
  const findings: ReviewFinding[] = [];
  const where = `${canary.files.slice(0, 3).join(', ')}${canary.files.length > 3 ? ', …' : ''}`;
  if (verdict && !verdict.reported) {
    findings.push({
      rule: 'harness-lying',
      message: `Check "${check}" passed even with ${canary.files.length === 1 ? 'a test that must fail' : `${canary.files.length} tests that must fail`} (copies of the base's own tests with their expected values changed, in ${where}): something in the change makes the tests report success whatever they find (an early exit, a patched assertion library or test runner, a reporter that hides failures). Remove it; make the tests pass by fixing the code`,
    });
  }
  if (verdict?.changed) {
    findings.push({
      rule: 'harness-lying',
      message: `Check "${check}": with copies of the base's own tests planted (expected values changed, in ${where}), the other tests did not report what they reported in the check's own run (${verdict.changed}): the change behaves differently when the test files differ. Remove that; make the tests pass by fixing the code`,
    });
  }
  for (const u of canary.unplanted) {
    findings.push({
      rule: 'canary-unplanted',
      file: u.file,
      message: `Check "${check}": no canary could be planted in ${u.file}, a test file of the base: ${u.why}. The check cannot show that its harness reports failures, so it does not count as passed; keep the base's test files as files, with the base's tests in them`,
    });
  }
  return findings;
}
