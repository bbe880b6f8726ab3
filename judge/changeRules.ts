import picomatch from 'picomatch';
import { inflateSync } from 'node:zlib';
import type { ReviewFinding } from '../contracts/run';
import { isTestFile } from './canary';
import { parseDiff } from './diffRules';

// Review rules on what the change adds to the code (docs/checks.md): code that can tell it is under test, and
// content the review cannot read (binaries, archives). Both are read from the diff as git made it (`--binary`).

/** What the spec lets through (spec `review`). */
export interface ChangeRuleOptions {
  /** Globs of files that may hold binary content (images, fonts); never an archive or an executable. */
  allowBinaries?: string[];
  /** Globs of files that may read the environment by computed names, the process's arguments or /proc. */
  allowEnvironmentReads?: string[];
  /** The hold-out checks' commands: code that names their paths looks for the hidden tests. */
  holdoutRuns?: string[];
}

// ---- code that knows it is under test ----

/** Variables test runners set in the processes they run, and globals they inject. */
const RUNNER_NAMES =
  /\b(NODE_TEST_CONTEXT|JEST_WORKER_ID|VITEST(?:_\w+)?|__vitest_\w+__|PYTEST_CURRENT_TEST|PYTEST_XDIST_\w+|PYTEST_VERSION|MOCHA_\w+|TAP_CHILD_ID)\b|typeof\s+(jest|vi|describe|it|test|expect)\b|['"`]\/nightshift\b/;

/**
 * Ways of reading the environment that a known-name rule cannot see through: a name computed at run time, the
 * environment as a whole (enumerated, copied, aliased), how the process was started, who called it. Each is a way
 * to tell a test run from any other; honest code fixing a bug rarely needs one, and a spec can allow them by glob.
 */
const ENVIRONMENT_READS: { pattern: RegExp; what: string }[] = [
  {
    pattern:
      /process\.env\s*\[\s*(?!(['"])[\w.-]*\1\s*\])|os\.environ\s*\[\s*(?!(['"])[\w.-]*\2\s*\])|os\.(?:environ\.get|getenv)\s*\(\s*(?!(['"])[\w.-]*\3\s*[,)])/,
    what: 'reads an environment variable by a computed name',
  },
  {
    pattern:
      /(?<!\{[\w$\s,:]*\}\s*=\s*)process\.env\b(?!\s*(?:\.\s*[A-Za-z_$]|\[))|\bprocess\s*\[|os\.environ\b(?!\s*(?:\[|\.get\s*\())|\bfrom\s+os\s+import\b[^\n]*\benviron\b|\b(?:getenv|environ)\s*\(\s*\)/,
    what: 'reads the environment as a whole',
  },
  {
    pattern:
      /\b(?:process|env)(?:\.\w+)*\s*[!=]==?\s*['"`][^'"`]*\btest|['"`][^'"`]*\btest[^'"`]*['"`]\s*[!=]==?\s*process\.env|(?:os\.environ|os\.getenv|process\.env)[^\n]*(?:===?|!==?|\bin\b|startsWith|includes)[^\n]*['"`][^'"`]*\btest/i,
    what: 'compares an environment variable with a test-like value',
  },
  {
    pattern: /\bprocess\s*\.\s*(?:argv0?|execArgv|execPath|title)\b|\bsys\.(?:orig_)?argv\b|['"`]\/proc\//,
    what: 'reads how its process was started (arguments, /proc)',
  },
  {
    pattern:
      /\bnew\s+Error\b[^;\n]*\)\s*\.\s*stack\b|\bError\.(?:captureStackTrace|prepareStackTrace)\b|\binspect\.(?:stack|currentframe|getouterframes)\b|\bsys\._getframe\b|\btraceback\.(?:extract|format|print)_stack\b/,
    what: 'inspects its callers (a stack trace)',
  },
  {
    pattern:
      /\bmodule\.(?:parent|children)\b|\brequire\.cache\b|\brequire\.main\b(?!\s*[!=]==?\s*module\b)|\bsys\.modules\b/,
    what: 'inspects which modules loaded it',
  },
];

/**
 * Path segments the hold-out checks' commands name (`node holdout/run.js` → holdout), but not the usual test folders.
 */
function holdoutSegments(runs: string[]): string[] {
  const common = new Set(['test', 'tests', 'spec', 'src', 'lib', '.', '..', '']);
  const segments = runs.flatMap((run) =>
    run
      .split(/\s+/)
      .filter((t) => t.includes('/'))
      .map((t) => t.replace(/^\.\//, '').split('/')[0]),
  );
  return [...new Set(segments.filter((s) => !common.has(s.toLowerCase()) && /^[\w.-]+$/.test(s)))];
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Added lines of non-test files that read the test runner's environment, by its known names or in a way that could
 * hide one (docs/checks.md: what this does not cover). Test files are the runners' own (`isTestFile`) and pytest's
 * conftest.py; everything else runs as the code under test.
 */
export function runnerAwareFindings(diff: string, options: ChangeRuleOptions = {}): ReviewFinding[] {
  const allowed = picomatch(options.allowEnvironmentReads?.length ? options.allowEnvironmentReads : ['!**'], {
    dot: true,
  });
  const segments = holdoutSegments(options.holdoutRuns ?? []);
  const holdout = segments.length ? new RegExp(`\\b(${segments.map(escape).join('|')})\\b`) : undefined;
  const findings: ReviewFinding[] = [];
  for (const f of parseDiff(diff)) {
    if (f.deleted || isTestFile(f.file) || /(^|\/)conftest\.py$/.test(f.file)) continue;
    for (const { line, text } of f.added) {
      const known = RUNNER_NAMES.exec(text) ?? holdout?.exec(text);
      const read = allowed(f.file) ? undefined : ENVIRONMENT_READS.find((r) => r.pattern.test(text));
      const why = known ? `names the test runner's or the hold-out's ${JSON.stringify(known[0])}` : read?.what;
      if (why)
        findings.push({
          rule: 'runner-aware',
          file: f.file,
          line,
          message: `${f.file}:${line} is not a test file and ${why}: code under test must behave the same whoever runs it`,
        });
    }
  }
  return findings;
}

// ---- binaries and archives ----

/** Archives and executables by their first bytes: they carry code the review cannot read. */
const CODE_CARRIERS: { kind: string; at?: number; magic: string }[] = [
  { kind: 'a gzip archive', magic: '1f8b' },
  { kind: 'a zip archive (zip, jar, whl, …)', magic: '504b0304' },
  { kind: 'a zip archive (empty or spanned)', magic: '504b0506' },
  { kind: 'a tar archive', at: 257, magic: Buffer.from('ustar').toString('hex') },
  { kind: 'an xz archive', magic: 'fd377a585a00' },
  { kind: 'a bzip2 archive', magic: '425a68' },
  { kind: 'a zstd archive', magic: '28b52ffd' },
  { kind: 'a 7z archive', magic: '377abcaf271c' },
  { kind: 'an ELF executable or library (.node, .so)', magic: '7f454c46' },
  { kind: 'a Mach-O executable', magic: 'cffaedfe' },
  { kind: 'a Mach-O executable', magic: 'feedfacf' },
  { kind: 'a Java class or a Mach-O universal binary', magic: 'cafebabe' },
  { kind: 'a Windows executable', magic: '4d5a' },
  { kind: 'a WebAssembly module', magic: '0061736d' },
];

export function codeCarrier(content: Buffer): string | undefined {
  return CODE_CARRIERS.find(
    (c) => content.subarray(c.at ?? 0, (c.at ?? 0) + c.magic.length / 2).toString('hex') === c.magic,
  )?.kind;
}

const BASE85 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~';

/** The new content of a `GIT binary patch` whose first block is `literal` (a delta patch has none to read). */
function binaryLiteral(patch: string[]): Buffer | undefined {
  if (!/^literal \d+$/.test(patch[0] ?? '')) return undefined;
  const bytes: number[] = [];
  for (const line of patch.slice(1)) {
    if (!line) break;
    const c = line.charCodeAt(0);
    const length = c <= 90 ? c - 64 : c - 96 + 26;
    const out: number[] = [];
    for (let i = 1; i + 5 <= line.length; i += 5) {
      let v = 0;
      for (const ch of line.slice(i, i + 5)) v = v * 85 + BASE85.indexOf(ch);
      out.push(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
    }
    bytes.push(...out.slice(0, length));
  }
  try {
    return inflateSync(Buffer.from(bytes));
  } catch {
    return undefined;
  }
}

/**
 * What no text file holds: NUL (git's own test), or bytes that are not UTF-8 (decoded as U+FFFD). Other control
 * bytes are text a terminal may misshow, not binary: the review's reader sees them escaped.
 */
const NOT_TEXT = /[\x00\ufffd]/;

/**
 * Files the change writes binary content into, by content not name: git's own binary patches, and text diffs (a
 * `.gitattributes` of the agent's can force one) whose added lines hold bytes no text has. An archive or an
 * executable is always a finding; other binaries (images, fonts) only outside `allowBinaries`.
 */
export function binaryFindings(diff: string, options: ChangeRuleOptions = {}): ReviewFinding[] {
  const allowed = picomatch(options.allowBinaries?.length ? options.allowBinaries : ['!**'], { dot: true });
  const findings: ReviewFinding[] = [];
  for (const f of parseDiff(diff)) {
    if (f.deleted) continue;
    const text = f.added.map((a) => a.text).join('\n');
    if (!f.binary && !NOT_TEXT.test(text)) continue;
    const content = f.binary ? binaryLiteral(f.binary) : Buffer.from(text, 'latin1');
    const kind = content && codeCarrier(content);
    if (!kind && allowed(f.file)) continue;
    const what = kind ? `adds ${kind}` : 'adds binary content';
    findings.push({
      rule: 'binary-added',
      file: f.file,
      message: `${f.file} ${what} (judged by its content, not its name): the review cannot read it; commit the source it is built from${kind ? '' : ', or allow the path in review.allowBinaries'}`,
    });
  }
  return findings;
}
