import { junitCounts, readJunit } from './junit';

// How many of a check's tests passed, failed and were skipped, as its runner reported them: from its JUnit report
// (with each test's name) or, without one, from the summary line runners print last. Both are printed by a process
// that runs the agent's code, so they are the agent's to fake: the baseline (judge/baseline.ts) compares them
// with the base's, and a canary run checks that a failing test is reported as failing.

export type TestStatus = 'passed' | 'failed' | 'skipped';

export interface TestTally {
  passed: number;
  failed: number;
  /** Skipped, pending, todo or deselected: known to the runner, not run. */
  skipped: number;
  /**
   * Each test by name: `classname › name` from a JUnit report, `package › TestName` from `go test -json`, as `go test
   * -v`, `pytest -v` and `cargo test` print them.
   */
  cases?: { name: string; status: TestStatus }[];
  /** What the counts were read from, for the log and the run's state (absent: a runner's summary line). */
  format?: TallyFormat;
}

/** Where a tally came from: a report, an event stream, per-test lines, or a summary line. */
export type TallyFormat = 'junit' | 'go test -json' | 'go test -v' | 'pytest -v' | 'cargo test' | 'summary';

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const unescapeXml = (s: string) =>
  s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) =>
    e[0] === '#'
      ? String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : Number(e.slice(1)))
      : XML_ENTITIES[e.toLowerCase()],
  );
const attr = (tag: string, name: string) => {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m ? unescapeXml(m[1]) : undefined;
};

/** A JUnit report's tests, each by name, with the report's totals. Undefined when the text is not a JUnit report. */
export function tallyFromJunit(xml: string): TestTally | undefined {
  const totals = junitCounts(xml);
  if (!totals) return undefined;
  const cases: { name: string; status: TestStatus }[] = [];
  // A <testcase …/> alone, or <testcase …> … </testcase> with what happened to it inside.
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const name = [attr(m[1], 'classname'), attr(m[1], 'name') ?? '?']
      .filter((p) => p !== undefined && p !== '')
      .join(' \u203a ');
    const body = m[3] ?? '';
    const status: TestStatus = /<skipped\b/.test(body)
      ? 'skipped'
      : /<(failure|error)\b/.test(body)
        ? 'failed'
        : 'passed';
    cases.push({ name, status });
  }
  if (!cases.length) {
    const failed = totals.failures + totals.errors;
    return { passed: totals.tests - failed - totals.skipped, failed, skipped: totals.skipped, format: 'junit' };
  }
  return { ...counted(cases), format: 'junit' };
}

/** The counts of tests named with their results. */
function counted(cases: { name: string; status: TestStatus }[]): TestTally {
  const count = (s: TestStatus) => cases.filter((c) => c.status === s).length;
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped'), cases };
}

/**
 * `go test -json`'s event stream (test2json, built into the toolchain): one JSON object a line, a `pass`, `fail` or
 * `skip` event for each test and subtest by package and name. The tests' own output is wrapped in `output` events,
 * so a line the code under test prints is never read as an event. Undefined when the output holds no such stream.
 */
export function tallyFromGoJson(output: string): TestTally | undefined {
  const cases: { name: string; status: TestStatus }[] = [];
  let stream = false;
  for (const line of output.split('\n')) {
    if (!line.startsWith('{"') || !line.includes('"Action":')) continue;
    let event: { Action?: unknown; Package?: unknown; Test?: unknown };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      continue;
    }
    if (typeof event.Action !== 'string' || typeof event.Package !== 'string') continue;
    stream = true;
    const status = ({ pass: 'passed', fail: 'failed', skip: 'skipped' } as const)[event.Action as 'pass'];
    if (status && typeof event.Test === 'string') cases.push({ name: `${event.Package} \u203a ${event.Test}`, status });
  }
  return stream ? { ...counted(cases), format: 'go test -json' } : undefined;
}

/**
 * `go test -v`'s result lines, `--- PASS: TestAdd (0.00s)`, `--- FAIL: …`, `--- SKIP: …` (subtests indented, named
 * `TestSub/zero`). Plain `go test` prints no line for a passing test: it gives no counts. Undefined when none.
 */
export function tallyFromGoVerbose(output: string): TestTally | undefined {
  // Plain `go test` prints `--- FAIL` lines too, but never a passing test's: without `-v`'s `=== RUN` lines, the
  // failures alone would read as every test there is.
  if (!/^[ \t]*=== RUN /m.test(output)) return undefined;
  const cases: { name: string; status: TestStatus }[] = [];
  for (const m of output.matchAll(/^[ \t]*--- (PASS|FAIL|SKIP): (\S+) \(\d+(?:\.\d+)?s\)[ \t]*$/gm))
    cases.push({ name: m[2], status: ({ PASS: 'passed', FAIL: 'failed', SKIP: 'skipped' } as const)[m[1] as 'PASS'] });
  return cases.length ? { ...counted(cases), format: 'go test -v' } : undefined;
}

/**
 * `cargo test`'s results, summed over every test binary it ran (the unit tests, each integration test, the doc
 * tests): `test result: ok. 3 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s`, with the
 * tests by name from its `test tests::adds ... ok` lines when they agree with the totals. The format is cargo's
 * documented libtest output (cargo is not installed on the machine these were written on). Undefined when none.
 */
export function tallyFromCargo(output: string): TestTally | undefined {
  const totals = { passed: 0, failed: 0, skipped: 0 };
  let found = false;
  for (const m of output.matchAll(
    /^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored; \d+ measured; (\d+) filtered out/gm,
  )) {
    found = true;
    totals.passed += Number(m[1]);
    totals.failed += Number(m[2]);
    totals.skipped += Number(m[3]) + Number(m[4]);
  }
  if (!found) return undefined;
  const cases = [...output.matchAll(/^test (.+?) \.\.\. (ok|FAILED|ignored)\b.*$/gm)].map((m) => ({
    name: m[1],
    status: ({ ok: 'passed', FAILED: 'failed', ignored: 'skipped' } as const)[m[2] as 'ok'],
  }));
  return agrees(totals, cases) ? { ...counted(cases), format: 'cargo test' } : { ...totals, format: 'cargo test' };
}

/** Whether tests named from a runner's output are the ones its totals count (else only the totals are used). */
function agrees(totals: Omit<TestTally, 'cases'>, cases: { name: string; status: TestStatus }[]): boolean {
  const c = counted(cases);
  return cases.length > 0 && c.passed === totals.passed && c.failed === totals.failed && c.skipped === totals.skipped;
}

/**
 * pytest's tests by name from its `-v` lines (`test_calc.py::test_add PASSED  [ 33%]`), kept when they agree with
 * its summary line's counts. Undefined when there are none.
 */
function pytestCases(output: string, totals: TestTally): TestTally | undefined {
  const cases = [
    ...output.matchAll(/^(\S+\.py::\S.*?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b.*?(?:\[[ \d]+%\])?[ \t]*$/gm),
  ].map((m) => ({
    name: m[1],
    status: (
      {
        PASSED: 'passed',
        XPASS: 'passed',
        FAILED: 'failed',
        ERROR: 'failed',
        SKIPPED: 'skipped',
        XFAIL: 'skipped',
      } as const
    )[m[2] as 'PASSED'],
  }));
  return agrees(totals, cases) ? { ...counted(cases), format: 'pytest -v' } : undefined;
}

/**
 * What a runner printed about its tests: `go test -json`'s events, `cargo test`'s results, `go test -v`'s lines (each
 * test by name), else the last summary line (pytest's with its `-v` names when they agree). Undefined when there is
 * none: the check's result is then only its exit code (unverified).
 */
export function tallyFromOutput(output: string): TestTally | undefined {
  const go = tallyFromGoJson(output) ?? tallyFromCargo(output) ?? tallyFromGoVerbose(output);
  if (go) return go;
  const summary = tallyFromSummary(output);
  return summary && (pytestCases(output, summary) ?? summary);
}

/**
 * The counts in the last summary a test runner printed: node's test runner (`# pass 3`, `ℹ fail 1`, `# skipped 2`),
 * or a line as jest, vitest, mocha and pytest print it (`1 failed, 1 skipped, 3 passed`, `3 passing`, `2 pending`;
 * pytest's `1 error`, a test whose setup failed, counts as failed). Undefined when there is none.
 */
export function tallyFromSummary(output: string): TestTally | undefined {
  const lines = output.split('\n').map((l) => l.trim());
  const last = (re: RegExp) => {
    for (let i = lines.length - 1; i >= 0; i--) {
      const m = re.exec(lines[i]);
      if (m) return Number(m[1]);
    }
    return undefined;
  };
  const pass = last(/^(?:#|ℹ)\s*pass\s+(\d+)$/);
  const fail = last(/^(?:#|ℹ)\s*fail\s+(\d+)$/);
  if (pass !== undefined || fail !== undefined) {
    const skipped = (last(/^(?:#|ℹ)\s*skipped\s+(\d+)$/) ?? 0) + (last(/^(?:#|ℹ)\s*todo\s+(\d+)$/) ?? 0);
    return { passed: pass ?? 0, failed: fail ?? 0, skipped };
  }
  const number =
    (re: RegExp) =>
    (line = '') =>
      re.exec(line)?.[1];
  const passedIn = number(/\b(\d+)\s+(?:passed|passing)\b/);
  const failedIn = (line = '') => {
    const failed = number(/\b(\d+)\s+(?:failed|failing)\b/)(line);
    // pytest's (`1 error in 0.03s`), not a compiler's `Found 3 errors in 2 files`.
    const errors = /\bin \d+(?:\.\d+)?s\b/.test(line) ? number(/\b(\d+)\s+errors?\b/)(line) : undefined;
    return failed || errors ? String(Number(failed ?? 0) + Number(errors ?? 0)) : undefined;
  };
  const skippedIn = (line = '') =>
    [...line.matchAll(/\b(\d+)\s+(?:skipped|pending|todo|deselected)\b/g)].reduce((n, m) => n + Number(m[1]), 0);
  for (let i = lines.length - 1; i >= 0; i--) {
    const failed = failedIn(lines[i]);
    let passed = passedIn(lines[i]);
    // Every test skipped: pytest's `3 skipped in 0.01s`, jest's `Tests:       3 skipped, 3 total`.
    const allSkipped = skippedIn(lines[i]) > 0 && (/\bin \d+(?:\.\d+)?s\b/.test(lines[i]) || /^Tests:/.test(lines[i]));
    if (!passed && !failed && !allSkipped) continue;
    // mocha prints "N passing" and "N pending" on the lines before "N failing" (empty lines aside).
    const before = lines.slice(0, i).filter(Boolean).slice(-2);
    let skipped = skippedIn(lines[i]);
    if (!passed) {
      passed = before.map((l) => passedIn(l)).find(Boolean);
      skipped += before.reduce((n, l) => n + skippedIn(l), 0);
    } else {
      // mocha: "N pending" after "N passing", with no failures.
      skipped += lines
        .slice(i + 1)
        .filter(Boolean)
        .slice(0, 1)
        .reduce((n, l) => n + (/^\d+\s+pending\b/.test(l) ? skippedIn(l) : 0), 0);
    }
    return { passed: Number(passed ?? 0), failed: Number(failed ?? 0), skipped };
  }
  return undefined;
}

/** Tests the runner ran (passed or failed). */
export const ran = (t: TestTally) => t.passed + t.failed;

/**
 * A check's tally after it ran: its JUnit report's (when the spec names one and it is there, read as junit.ts
 * allows), else its output's summary line. `problem` says why a named report was not used.
 */
export async function checkTally(
  workspace: string,
  junit: string | undefined,
  output: string,
): Promise<{ tally?: TestTally; xml?: string; problem?: string }> {
  let problem: string | undefined;
  if (junit) {
    const read = await readJunit(workspace, junit);
    const tally = 'xml' in read ? tallyFromJunit(read.xml) : undefined;
    if (tally && 'xml' in read) return { tally, xml: read.xml };
    problem = 'problem' in read ? read.problem : `${junit} is not a JUnit XML report`;
  }
  return { tally: tallyFromOutput(output), problem };
}

/**
 * Each test by name from node's test runner's output, when it printed TAP (`ok 3 - adds zero`, `not ok 4 - …`,
 * `# SKIP`) or its spec reporter's lines (`✔ adds zero (0.4ms)`, `✖ …`, `﹣ … # SKIP`). A test with subtests or a
 * suite is left out (its line follows its children's, deeper ones): only the tests themselves. Undefined when the
 * output names no test.
 */
export function casesFromOutput(output: string): { name: string; status: TestStatus }[] | undefined {
  const lines: { depth: number; name: string; status: TestStatus }[] = [];
  for (const line of output.split('\n')) {
    if (/^\s*✖ failing tests:/.test(line)) break; // the spec reporter lists the failures again at the end
    const tap = /^(\s*)(not ok|ok) \d+ - (.*?)(\s+# (SKIP|TODO)\b.*)?$/.exec(line);
    const spec = /^(\s*)([✔✖﹣]) (.*?) \(\d+(?:\.\d+)?ms\)(\s+# (SKIP|TODO)\b.*)?$/.exec(line);
    const m = tap ?? spec;
    if (!m) continue;
    const status: TestStatus = m[4]
      ? 'skipped'
      : m[2] === 'ok' || m[2] === '✔'
        ? 'passed'
        : m[2] === '﹣'
          ? 'skipped'
          : 'failed';
    lines.push({ depth: m[1].length, name: m[3], status });
  }
  const cases = lines
    .filter((l, i) => !(i > 0 && lines[i - 1].depth > l.depth))
    .map(({ name, status }) => ({ name, status }));
  return cases.length ? cases : undefined;
}
