import type { ReviewFinding } from '../contracts/run';
import { MIN_SECRET_LENGTH } from '../secrets/redact';
import { PRIVATE_KEY_BEGIN, TOKEN_SHAPES } from '../secrets/tokenShapes';

/** One file of a unified diff (`git diff`), with its added lines and their new line numbers. */
export interface FileDiff {
  file: string;
  deleted: boolean;
  added: { line: number; text: string }[];
  removed: string[];
  /** Git found the content binary: the lines of its `GIT binary patch` (none for "Binary files … differ"). */
  binary?: string[];
}

/** A path of a diff header, C-quoted by git where it has special or non-ASCII characters (core.quotePath). */
function headerPath(raw: string): string {
  if (!raw.startsWith('"')) return raw;
  const escapes: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };
  const bytes: number[] = [];
  for (let i = 1; i < raw.length - 1; i++) {
    if (raw[i] !== '\\') bytes.push(...Buffer.from(raw[i]));
    else if (/[0-7]{3}/.test(raw.slice(i + 1, i + 4))) bytes.push(parseInt(raw.slice(i + 1, (i += 3) + 1), 8));
    else bytes.push(escapes[raw[++i]] ?? raw.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}
const HEADER = /^diff --git ("a\/(?:[^"\\]|\\.)*"|a\/.*?) ("b\/(?:[^"\\]|\\.)*"|b\/.*)$/;

export function parseDiff(diff: string): FileDiff[] {
  const files: FileDiff[] = [];
  let current: FileDiff | undefined;
  let line = 0;
  for (const raw of diff.split('\n')) {
    const header = HEADER.exec(raw);
    if (header) {
      current = { file: headerPath(header[2]).replace(/^"?b\//, ''), deleted: false, added: [], removed: [] };
      files.push(current);
      continue;
    }
    if (!current) continue;
    if (raw.startsWith('deleted file mode')) current.deleted = true;
    if (current.binary) {
      current.binary.push(raw);
      continue;
    }
    if (raw === 'GIT binary patch' || /^Binary files .* differ$/.test(raw)) current.binary = [];
    const hunk = /^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(raw);
    if (hunk) line = Number(hunk[1]);
    else if (raw.startsWith('+++') || raw.startsWith('---')) continue;
    else if (raw.startsWith('+')) current.added.push({ line: line++, text: raw.slice(1) });
    else if (raw.startsWith('-')) current.removed.push(raw.slice(1));
    else if (raw.startsWith(' ')) line++;
  }
  return files;
}

const TOKENS = TOKEN_SHAPES.map((t) => ({ what: t.what, pattern: new RegExp(t.source) }));
const TEST_FILE =
  /(^|\/)(tests?|__tests__|spec)\/|\.(test|spec)\.[cm]?[jt]sx?$|_test\.(go|py|rb)$|(^|\/)test_[^/]*\.py$/;
const ASSERTION = /\b(assert\w*|expect|should)\b|\bt\.(Error|Fatal)/;
// A rebase that conflicted hands the agent files with git's markers; one left in means the conflict is not resolved.
const CONFLICT_MARKER = /^(<{7}|>{7})( |$)/;
const SKIP = /\b(it|test|describe)\.skip\(|\bx(it|describe|test)\(|@pytest\.mark\.skip|\bt\.Skip\(|@Disabled|@Ignore/;

/**
 * Secrets the diff adds: the values of the run's secrets (by name: the finding never holds a value), tokens of
 * well-known shapes and private keys. Read from the diff as git made it, before it is stored redacted.
 */
export function secretFindings(diff: string, secrets: Record<string, string>): ReviewFinding[] {
  const values = Object.entries(secrets).filter(([, value]) => value.length >= MIN_SECRET_LENGTH);
  const findings: ReviewFinding[] = [];
  for (const f of parseDiff(diff)) {
    for (const { line, text } of f.added) {
      for (const [name] of values.filter(([, value]) => text.includes(value))) {
        findings.push({
          rule: 'secret',
          file: f.file,
          line,
          message: `${f.file}:${line} adds the value of the secret ${name}; remove it (read $${name} from the environment at run time)`,
        });
      }
      if (PRIVATE_KEY_BEGIN.test(text))
        findings.push({
          rule: 'private-key',
          file: f.file,
          line,
          message: `${f.file}:${line} adds a private key; remove it`,
        });
      for (const { what, pattern } of TOKENS) {
        if (pattern.test(text))
          findings.push({
            rule: 'secret',
            file: f.file,
            line,
            message: `${f.file}:${line} adds what looks like an ${what}; remove it and use a secret`,
          });
      }
    }
  }
  return findings;
}

/** Rule findings on the diff itself: conflict markers left, tests deleted or weakened. */
export function diffFindings(diff: string): ReviewFinding[] {
  const findings: ReviewFinding[] = [];
  for (const f of parseDiff(diff)) {
    const marker = f.added.find((a) => CONFLICT_MARKER.test(a.text));
    if (marker)
      findings.push({
        rule: 'conflict-marker',
        file: f.file,
        line: marker.line,
        message: `${f.file}:${marker.line} still holds a git conflict marker; resolve the conflict`,
      });
    if (!TEST_FILE.test(f.file)) continue;
    if (f.deleted) {
      findings.push({
        rule: 'tests-deleted',
        file: f.file,
        message: `${f.file} is a test file and was deleted; fix the code, not the tests`,
      });
      continue;
    }
    const skipped = f.added.find((a) => SKIP.test(a.text));
    if (skipped)
      findings.push({
        rule: 'tests-weakened',
        file: f.file,
        line: skipped.line,
        message: `${f.file}:${skipped.line} skips a test; fix the code, not the tests`,
      });
    const lost =
      f.removed.filter((l) => ASSERTION.test(l)).length - f.added.filter((a) => ASSERTION.test(a.text)).length;
    if (lost > 0)
      findings.push({
        rule: 'tests-weakened',
        file: f.file,
        message: `${f.file} loses ${lost} assertion(s); fix the code, not the tests`,
      });
  }
  return findings;
}
