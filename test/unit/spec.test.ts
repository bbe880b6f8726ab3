import { parseSpec, SpecError, detectFormat } from '../../spec/parse';
import { parseBytes, parseDuration } from '../../spec/schema';
import { scopeViolations, countDiffLines } from '../../judge/scope';
import { Redactor } from '../../secrets/redact';
import { CommandLog } from '../../workspaces/commandLog';
import type { ArtifactStore } from '../../store/artifacts';
import { RunLog } from '../../store/runLog';
import { tempDir } from '../helpers/repos';
import { githubRepoOf } from '../../forges/github';
import { defaultBranch } from '../../workflows/specRun/branch';
import { humanDuration } from '../../workflows/specRun/time';

const minimal =
  '---\ntitle: Fix it\nrepo: ./repo\nagent: { kind: command, command: ["./fix.sh"] }\n---\nPlease fix it.\n';

function issuesOf(text: string, hint?: string) {
  try {
    parseSpec(text, hint);
  } catch (err) {
    if (err instanceof SpecError) return err.issues;
    throw err;
  }
  throw new Error('expected a SpecError');
}

test('markdown: the body is the task and every default is filled in', () => {
  const spec = parseSpec(minimal);
  expect(spec).toMatchObject({
    title: 'Fix it',
    task: 'Please fix it.',
    scope: { allow: ['**'], deny: [] },
    checks: [],
    review: { agent: false, maxDiffLines: 600 },
    approval: { required: true, timeout: 72 * 3600_000 },
    deliver: { push: false },
    sandbox: { driver: 'bwrap', network: [], cpus: 2, memory: 4 * 1024 ** 3, timeout: 45 * 60_000 },
    secrets: [],
    limits: { iterations: 3 },
  });
  expect(spec.base).toBeUndefined();
  expect(spec.branch).toBeUndefined();
});

test('YAML and JSON with a task field parse to the same spec', () => {
  const yaml = 'title: Fix it\nrepo: ./repo\nagent: { kind: command, command: ["./fix.sh"] }\ntask: Please fix it.\n';
  const json = JSON.stringify({
    title: 'Fix it',
    repo: './repo',
    agent: { kind: 'command', command: ['./fix.sh'] },
    task: 'Please fix it.',
  });
  expect(parseSpec(yaml, 'application/yaml')).toEqual(parseSpec(minimal));
  expect(parseSpec(json, 'application/json')).toEqual(parseSpec(minimal));
});

test('errors name the field and its line in the file', () => {
  const text =
    '---\ntitle: Fix it\nrepo: ./repo\nagent:\n  kind: command\n  command: ["./fix.sh"]\nlimits:\n  iterations: 0\n---\n';
  expect(issuesOf(text)).toEqual([
    { field: 'limits.iterations', line: 8, message: expect.stringMatching(/>=1|at least|too small/i) },
  ]);
  expect(
    issuesOf('---\ntitle: x\nrepo: r\nagent: { kind: command, command: [x] }\nscope:\n  allowed: []\n---\n')[0],
  ).toMatchObject({ field: 'scope.allowed', line: 6, message: 'unknown field "allowed"' });
  expect(
    issuesOf('---\ntitle: x\n---\n')
      .map((i) => i.field)
      .sort(),
  ).toEqual(['agent', 'repo']);
  expect(issuesOf('---\ntitle: [\n---\n')[0]).toMatchObject({
    field: '',
    line: 2,
    message: expect.stringContaining('invalid YAML'),
  });
  expect(issuesOf('no front matter here', 'x.md')[0].message).toMatch(/front matter/);
  expect(
    issuesOf('---\ntitle: x\nrepo: r\nagent: { kind: command, command: [x] }\ntask: a\n---\nbody\n')[0],
  ).toMatchObject({ field: 'task' });
  expect(
    issuesOf(
      '---\ntitle: x\nrepo: r\nagent: { kind: command, command: [x] }\nchecks:\n  - { name: a, run: x }\n  - { name: a, run: y }\n---\n',
    )[0],
  ).toMatchObject({ field: 'checks', message: 'check names must be unique' });
});

test('formats are detected from the content type, the file name or the text', () => {
  expect(detectFormat('x', 'text/markdown')).toBe('markdown');
  expect(detectFormat('x', 'spec.yml')).toBe('yaml');
  expect(detectFormat('{"a":1}')).toBe('json');
  expect(detectFormat('---\na: 1\n---\n')).toBe('markdown');
});

test('durations and sizes', () => {
  expect([humanDuration(259_200_000), humanDuration(90_000), humanDuration(2000), humanDuration(1500)]).toEqual([
    '3d',
    '90s',
    '2s',
    '1.5s',
  ]);
  expect(parseDuration('90s')).toBe(90_000);
  expect(parseDuration('72h')).toBe(259_200_000);
  expect(parseDuration(5)).toBe(5000);
  expect(() => parseDuration('soon')).toThrow(/not a duration/);
  expect(parseBytes('4g')).toBe(4 * 1024 ** 3);
  expect(parseBytes('512m')).toBe(512 * 1024 ** 2);
  expect(() => parseBytes('lots')).toThrow(/not a size/);
});

test('scope: allow and deny globs, dotfiles included', () => {
  const scope = { allow: ['src/**', 'test/**'], deny: ['**/.env*', 'src/vendor/**'] };
  expect(
    scopeViolations(
      ['src/a.ts', 'test/b.ts', 'README.md', 'src/.env.local', 'src/vendor/x.js', '.github/ci.yml'],
      scope,
    ),
  ).toEqual(['README.md', 'src/.env.local', 'src/vendor/x.js', '.github/ci.yml']);
  expect(scopeViolations(['.github/ci.yml'], { allow: ['**'], deny: [] })).toEqual([]);
});

test('diff line counting ignores the file headers', () => {
  expect(countDiffLines('diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-1\n+2\n')).toBe(2);
});

test('default branches are readable and unique per run', () => {
  expect(defaultBranch('Fix rounding in invoice totals!', 'ns-a1b2c3d4e5f6')).toBe(
    'nightshift/fix-rounding-in-invoice-totals-a1b2c3d4e5f6',
  );
  const a = defaultBranch('Nightly', 'ns-sched-nightly-2026-11-25T06:00:00Z');
  const b = defaultBranch('Nightly', 'ns-sched-nightly-2026-11-26T06:00:00Z');
  expect(a).not.toBe(b);
  expect(a).toMatch(/^nightshift\/nightly-[0-9a-f]{8}$/);
});

test('redaction catches a secret split across chunks and holds back only what could be one', () => {
  const r = new Redactor({ TOKEN: 'abcdef123456', SHORT: 'ab' });
  const out = [r.push('value: abcd'), r.push('ef12'), r.push('3456 and more text '), r.push('tail'), r.flush()];
  expect(out.join('')).toBe('value: [redacted:TOKEN] and more text tail');
  expect(out[0]).toBe('');
  expect(new Redactor({}).push('as is')).toBe('as is');
});

test('redaction blanks well-known token shapes and private key blocks, also split across chunks, and leaves look-alikes', () => {
  const gh = `ghp_${'a1B2'.repeat(9)}`;
  const aws = 'AKIAIOSFODNN7EXAMPLE';
  const key =
    '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACD=\n-----END OPENSSH PRIVATE KEY-----';
  const text = `push with ${gh} and ${aws};\n${key}\nsk-ant-api03-${'x'.repeat(30)} ok; ghp_short, AKIA lower, sk-learn, github.com\n`;
  const r = new Redactor({});
  // Cut the text at every 7th character, so tokens and the key block arrive in pieces.
  const out = (text.match(/[\s\S]{1,7}/g) ?? []).map((c) => r.push(c)).join('') + r.flush();
  expect(out).toBe(
    'push with [redacted:github-token] and [redacted:aws-access-key];\n[redacted:private-key]\n[redacted:anthropic-key] ok; ghp_short, AKIA lower, sk-learn, github.com\n',
  );
  // What could still be a token is held back, nothing else.
  const held = new Redactor({});
  expect(held.push('line one\nnext: ghp_12')).toBe('line one\nnext: ');
  expect(held.push('3 is not one\n')).toBe('ghp_123 is not one\n');
  // A secret value's hold-back does not cut through a token either.
  const both = new Redactor({ NS: 's3cr3t-abcdefabcdef' });
  expect(
    both.push(`found ${gh.slice(0, 15)}`) + both.push(`${gh.slice(15)} and s3cr3t-abcdefabcdef\n`) + both.flush(),
  ).toBe('found [redacted:github-token] and [redacted:NS]\n');
});

test('deliver.pr: true or settings; a repo that is not owner/name is refused', () => {
  const withDeliver = (deliver: string) => minimal.replace('---\nPlease', `deliver: ${deliver}\n---\nPlease`);
  expect(parseSpec(withDeliver('{ pr: true }')).deliver).toEqual({ push: false, pr: { draft: false } });
  // `false` is kept: on a forge repo it opts out of the pull request that is the default there (admission settles it).
  expect(parseSpec(withDeliver('{ pr: false }')).deliver).toEqual({ push: false, pr: false });
  expect(parseSpec(withDeliver('{ pr: { repo: acme/billing, base: release, draft: true } }')).deliver.pr).toEqual({
    repo: 'acme/billing',
    base: 'release',
    draft: true,
  });
  for (const url of [
    'https://github.com/acme/billing.git',
    'git@github.com:acme/billing.git',
    'ssh://git@github.example.com:2222/acme/billing',
    'https://x-access-token:t@github.com/acme/billing/',
  ]) {
    expect(githubRepoOf(url)).toBe('acme/billing');
  }
  expect(githubRepoOf('/srv/git/billing.git')).toBeUndefined();
  expect(issuesOf(withDeliver('{ pr: { repo: "https://github.com/acme" } }')).map((i) => i.message)).toEqual([
    expect.stringContaining('owner/name on GitHub'),
  ]);
});

test('a command log redacts each stream on its own: stderr landing between the halves of a token on stdout does not save it', async () => {
  const home = tempDir('logs');
  const token = `ghp_${'b'.repeat(36)}`;
  const log = new CommandLog(new RunLog(home), 'run-logs', 'agent', { NS_VALUE: 'value-of-the-secret' });
  log.write(`found ${token.slice(0, 15)}`, 'stdout');
  log.write('value-of-the-secret on stderr\n', 'stderr');
  log.write(`${token.slice(15)} in the repo\n`, 'stdout');
  const stored = new Map<string, string>();
  const { logId } = await log.close({
    put: async (text: string) => (stored.set('id', text), 'id'),
  } as unknown as ArtifactStore);
  const text = stored.get(logId)!;
  expect(text).toContain('found [redacted:github-token] in the repo');
  expect(text).toContain('[redacted:NS_VALUE] on stderr');
  expect(text).not.toContain(token.slice(4, 15));
});
