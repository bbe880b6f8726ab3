import { symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { headFile } from '../../git/git';
import { parseSpec } from '../../spec/parse';
import { defaultsYaml, quickSpec, QuickSpecError, repoDefaults, titleOf } from '../../spec/quick';
import { gitIn, makeRepo, tempDir } from '../helpers/repos';

const request = { repo: 'billing', title: 'Fix rounding', task: 'Round half-even at the end.' };
const REPO_YAML = [
  '# shared by every run of this repo',
  'title: ignored, the request names the run',
  'repo: ../elsewhere',
  'task: ignored too',
  'agent: { kind: command, command: ["./fix.sh"] }',
  'checks:',
  '  - { name: test, run: "npm test" }',
  'approval: { timeout: 24h }',
  '',
].join('\n');

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected it to throw');
}

test(".nightshift.yml's fields with the request's title, task and repo (the file's own are ignored); the server's defaults not mixed in", () => {
  const { spec, source } = quickSpec(request, REPO_YAML, 'agent: { kind: codex }\nlimits: { iterations: 9 }\n');
  expect(source).toBe('.nightshift.yml');
  expect(spec).toEqual({
    title: 'Fix rounding',
    repo: 'billing',
    agent: { kind: 'command', command: ['./fix.sh'] },
    checks: [{ name: 'test', run: 'npm test' }],
    approval: { timeout: '24h' },
    task: 'Round half-even at the end.',
  });
  // Ready to submit: the spec's own parser takes it, durations as written.
  expect(parseSpec(JSON.stringify(spec), 'application/json')).toMatchObject({
    title: 'Fix rounding',
    approval: { timeout: 24 * 3600_000 },
    limits: { iterations: 3 },
  });
});

test("the server's defaults without a .nightshift.yml; the built-in agent without either; an empty file is no settings", () => {
  expect(quickSpec(request, undefined, 'agent: { kind: codex }\nlimits: { iterations: 9 }\n')).toEqual({
    source: 'server',
    spec: {
      title: 'Fix rounding',
      repo: 'billing',
      agent: { kind: 'codex' },
      limits: { iterations: 9 },
      task: request.task,
    },
  });
  expect(quickSpec(request, undefined, undefined)).toEqual({
    source: 'built-in',
    spec: { title: 'Fix rounding', repo: 'billing', agent: { kind: 'claude-code' }, task: request.task },
  });
  // A repo's file with only comments is the repo's choice (no settings): the server's are not used, the agent is built
  // in.
  expect(quickSpec(request, '# nothing yet\n', 'agent: { kind: codex }\n')).toEqual({
    source: '.nightshift.yml',
    spec: { title: 'Fix rounding', repo: 'billing', agent: { kind: 'claude-code' }, task: request.task },
  });
  expect(quickSpec(request, 'checks: [{ name: t, run: "true" }]\n', undefined).spec.agent).toEqual({
    kind: 'claude-code',
  });
});

test('invalid YAML or fields in .nightshift.yml: one line naming the file, the field and the line', () => {
  const yaml = thrown(() => quickSpec(request, 'agent: { kind: command\nchecks: []\n', undefined));
  expect(yaml).toBeInstanceOf(QuickSpecError);
  expect(yaml.message).toMatch(/^\.nightshift\.yml: spec at line \d: invalid YAML: [^\n]+$/);
  const field = thrown(() => quickSpec(request, '# settings\nagent:\n  kind: gpt-pilot\n', undefined));
  expect(field.message).toMatch(/^\.nightshift\.yml: agent\.kind at line 3: Invalid option/);
  expect(thrown(() => quickSpec(request, '- a list\n', undefined)).message).toBe(
    '.nightshift.yml: spec at line 1: the spec must be a mapping of fields (title, repo, agent, …)',
  );
  expect(
    thrown(() => quickSpec(request, undefined, 'agent: { kind: codex }\nsandbox: { cpus: many }\n')).message,
  ).toMatch(/^the server's spec-defaults\.yml: sandbox\.cpus at line 2: /);
});

test('overrides replace whole top-level fields, null removes one; a different repo, title or task there is refused', () => {
  const { spec } = quickSpec(
    request,
    REPO_YAML,
    undefined,
    'repo: billing\nchecks: []\napproval: null\nlimits: { iterations: 5 }\n',
  );
  expect(spec).toEqual({
    title: 'Fix rounding',
    repo: 'billing',
    agent: { kind: 'command', command: ['./fix.sh'] },
    checks: [],
    limits: { iterations: 5 },
    task: request.task,
  });
  expect(
    thrown(() => quickSpec(request, REPO_YAML, undefined, 'agent: { kind: command }\nrepo: payroll\n')).message,
  ).toBe("the overrides: repo at line 2: differs from the request's repo; set it there, not in the overrides");
  expect(thrown(() => quickSpec(request, REPO_YAML, undefined, 'limits:\n  iterations: 99\n')).message).toMatch(
    /^the overrides: limits\.iterations at line 2: /,
  );
});

test('a bad title is the request’s, not a file’s', () => {
  const err = thrown(() => quickSpec({ ...request, title: ' ' }, REPO_YAML, undefined));
  expect(err).not.toBeInstanceOf(QuickSpecError);
  expect(err.message).toBe('title: must not be empty');
});

test('the defaults as YAML (no title, no task) round-trip into the same spec', () => {
  const { spec } = quickSpec(repoDefaults('billing'), REPO_YAML, undefined);
  const yaml = defaultsYaml(spec);
  expect(yaml).not.toMatch(/^(title|task):/m);
  expect(parse(yaml)).toEqual({
    repo: 'billing',
    agent: { kind: 'command', command: ['./fix.sh'] },
    checks: [{ name: 'test', run: 'npm test' }],
    approval: { timeout: '24h' },
  });
  expect(quickSpec(request, REPO_YAML, undefined, yaml).spec).toEqual(quickSpec(request, REPO_YAML, undefined).spec);
});

test('a title from the task: its first non-empty line, at most 80 characters', () => {
  expect(titleOf('\n  Fix the flaky test  \nIt fails on Mondays.')).toBe('Fix the flaky test');
  const long = titleOf('x'.repeat(200));
  expect(long).toHaveLength(80);
  expect(long.endsWith('…')).toBe(true);
});

test('headFile reads the committed file at HEAD, not the working tree; no file, a link or an empty repo is none', async () => {
  const repo = makeRepo({ '.nightshift.yml': 'agent: { kind: codex }\n', 'README.md': 'hi\n' });
  writeFileSync(path.join(repo, '.nightshift.yml'), 'agent: { kind: command }\n');
  expect(await headFile(repo, '.nightshift.yml')).toBe('agent: { kind: codex }\n');
  expect(await headFile(repo, 'missing.yml')).toBeUndefined();
  const linked = makeRepo({ 'README.md': 'hi\n' });
  symlinkSync('README.md', path.join(linked, '.nightshift.yml'));
  gitIn(linked, 'add', '.nightshift.yml');
  gitIn(linked, '-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-qm', 'link');
  expect(await headFile(linked, '.nightshift.yml')).toBeUndefined();
  const empty = tempDir('empty');
  gitIn(empty, 'init', '-q');
  expect(await headFile(empty, '.nightshift.yml')).toBeUndefined();
  await expect(headFile(repo, 'README.md', 2)).rejects.toThrow('README.md is 3 bytes, more than 2');
});
