import { diffFindings, secretFindings } from '../../activities/diffRules';
import { parseReviewVerdict } from '../../agents/review';
import { gitIn, makeRepo } from '../helpers/repos';
import { writeFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';

// The review's rules on real `git diff` output: what an agent must not slip past review.

test('secrets, private keys, conflict markers, deleted tests, skipped tests and lost assertions are found, with file and line', () => {
  const repo = makeRepo({
    'src/app.js': 'module.exports = 1;\n',
    'test/app.test.js': "test('one', () => {\n  expect(1).toBe(1);\n  expect(2).toBe(2);\n});\n",
    'tests/test_old.py': 'def test_old():\n    assert True\n',
    'lib/util_test.go': 'package lib\n',
  });
  writeFileSync(path.join(repo, 'src/app.js'), `module.exports = 1;\nconst aws = 'AKIAABCDEFGHIJKLMNOP';\nconst gh = 'ghp_${'a'.repeat(36)}';\nconst db = 'pw-hunter2-value';\n`);
  writeFileSync(path.join(repo, 'deploy.pem'), '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n');
  writeFileSync(path.join(repo, 'test/app.test.js'), "test.skip('one', () => {\n  expect(1).toBe(1);\n});\n");
  rmSync(path.join(repo, 'tests/test_old.py'));
  writeFileSync(path.join(repo, 'src/merged.txt'), 'kept\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> run\n');
  gitIn(repo, 'add', '-A');
  const diff = gitIn(repo, 'diff', '--cached');
  const findings = [...diffFindings(diff), ...secretFindings(diff, { DB_PASSWORD: 'pw-hunter2-value' })];
  expect(findings.map((f) => `${f.rule} ${f.file}${f.line ? `:${f.line}` : ''}`).sort()).toEqual([
    'conflict-marker src/merged.txt:2',
    'private-key deploy.pem:1',
    'secret src/app.js:2',
    'secret src/app.js:3',
    'secret src/app.js:4',
    'tests-deleted tests/test_old.py',
    'tests-weakened test/app.test.js',
    'tests-weakened test/app.test.js:1',
  ]);
  // A finding names the secret, never its value.
  expect(findings.find((f) => f.line === 4)!.message).toContain('DB_PASSWORD');
  expect(JSON.stringify(findings)).not.toContain('pw-hunter2-value');
});

test('an honest change has no findings: new code, new tests, a test made stricter', () => {
  const repo = makeRepo({ 'src/app.js': 'module.exports = 1;\n', 'test/app.test.js': "test('one', () => {\n  expect(1).toBe(1);\n});\n" });
  writeFileSync(path.join(repo, 'src/app.js'), 'module.exports = 2;\n');
  writeFileSync(path.join(repo, 'test/app.test.js'), "test('one', () => {\n  expect(2).toBe(2);\n  expect(typeof 2).toBe('number');\n});\n");
  gitIn(repo, 'add', '-A');
  const diff = gitIn(repo, 'diff', '--cached');
  expect([...diffFindings(diff), ...secretFindings(diff, { DB_PASSWORD: 'pw-hunter2-value' })]).toEqual([]);
});

test('the agent reviewer’s verdict is the last JSON object of its final message; none, or a bare "changes", fails closed', () => {
  expect(parseReviewVerdict('I looked.\n{"verdict": "approve", "findings": []}')).toEqual({ verdict: 'approve', findings: [] });
  expect(parseReviewVerdict('{"verdict": "changes", "findings": [{"file": "a.js", "line": 3, "message": "off by one"}]}')).toEqual({
    verdict: 'changes',
    findings: [{ rule: 'agent-review', file: 'a.js', line: 3, message: 'a.js:3: off by one' }],
  });
  expect(parseReviewVerdict('Looks fine to me!').findings[0].message).toMatch(/gave no verdict/);
  expect(parseReviewVerdict('{"verdict": "changes"}').findings[0].message).toMatch(/without naming them/);
  expect(parseReviewVerdict('{"verdict": "approve", "findings": [{"message": "but fix this"}]}').verdict).toBe('changes');
});
