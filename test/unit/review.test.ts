import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { binaryFindings, runnerAwareFindings } from '../../judge/changeRules';
import { diffFindings, secretFindings } from '../../judge/diffRules';
import { git as serverGit } from '../../git/git';
import { parseReviewVerdict } from '../../agents/review';
import type { ReviewFinding } from '../../contracts/run';
import { gitIn, makeRepo, tempDir } from '../helpers/repos';

// The review's rules on real `git diff` output: what an agent must not slip past review.

test('secrets, private keys, conflict markers, deleted tests, skipped tests and lost assertions are found, with file and line', () => {
  const repo = makeRepo({
    'src/app.js': 'module.exports = 1;\n',
    'test/app.test.js': "test('one', () => {\n  expect(1).toBe(1);\n  expect(2).toBe(2);\n});\n",
    'tests/test_old.py': 'def test_old():\n    assert True\n',
    'lib/util_test.go': 'package lib\n',
  });
  writeFileSync(
    path.join(repo, 'src/app.js'),
    `module.exports = 1;\nconst aws = 'AKIAABCDEFGHIJKLMNOP';\nconst gh = 'ghp_${'a'.repeat(36)}';\nconst db = 'pw-hunter2-value';\n`,
  );
  writeFileSync(
    path.join(repo, 'deploy.pem'),
    '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n',
  );
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
  const repo = makeRepo({
    'src/app.js': 'module.exports = 1;\n',
    'test/app.test.js': "test('one', () => {\n  expect(1).toBe(1);\n});\n",
  });
  writeFileSync(path.join(repo, 'src/app.js'), 'module.exports = 2;\n');
  writeFileSync(
    path.join(repo, 'test/app.test.js'),
    "test('one', () => {\n  expect(2).toBe(2);\n  expect(typeof 2).toBe('number');\n});\n",
  );
  gitIn(repo, 'add', '-A');
  const diff = gitIn(repo, 'diff', '--cached');
  expect([...diffFindings(diff), ...secretFindings(diff, { DB_PASSWORD: 'pw-hunter2-value' })]).toEqual([]);
});

test('the agent reviewer’s verdict is the last JSON object of its final message; none, or a bare "changes", fails closed', () => {
  expect(parseReviewVerdict('I looked.\n{"verdict": "approve", "findings": []}')).toEqual({
    verdict: 'approve',
    findings: [],
  });
  expect(
    parseReviewVerdict('{"verdict": "changes", "findings": [{"file": "a.js", "line": 3, "message": "off by one"}]}'),
  ).toEqual({
    verdict: 'changes',
    findings: [{ rule: 'agent-review', file: 'a.js', line: 3, message: 'a.js:3: off by one' }],
  });
  expect(parseReviewVerdict('Looks fine to me!').findings[0].message).toMatch(/gave no verdict/);
  expect(parseReviewVerdict('{"verdict": "changes"}').findings[0].message).toMatch(/without naming them/);
  expect(parseReviewVerdict('{"verdict": "approve", "findings": [{"message": "but fix this"}]}').verdict).toBe(
    'changes',
  );
});

// Issue 21: code under test that can tell it is under test, and content the review cannot read.
describe('runner-aware code and binaries (judge/changeRules.ts)', () => {
  /**
   * The change as the agent stage stores it: `git diff --binary` between the base and the change, by the server's git.
   */
  async function change(base: Record<string, string>, write: (repo: string) => void): Promise<string> {
    const repo = makeRepo(base);
    write(repo);
    gitIn(repo, 'add', '-A');
    gitIn(repo, '-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-qm', 'change');
    return serverGit(repo, ['diff', '--binary', '--no-ext-diff', '--no-textconv', 'HEAD~1', 'HEAD']);
  }
  const put = (repo: string, rel: string, content: string | Buffer) => {
    mkdirSync(path.dirname(path.join(repo, rel)), { recursive: true });
    writeFileSync(path.join(repo, rel), content);
  };
  const named = (findings: ReviewFinding[]) =>
    findings.map((f) => `${f.rule} ${f.file}${f.line ? `:${f.line}` : ''}`).sort();

  // Each a way to take the right branch only under the runner; the later ones beat a list of known names.
  const CHEATS: Record<string, string> = {
    'src/known.js': 'exports.add = (a, b) => (process.env.NODE_TEST_CONTEXT ? a + b : a - b);\n',
    'src/computed.js':
      "const k = 'NODE_' + 'TEST_CONTEXT';\nexports.add = (a, b) => (process.env[k] ? a + b : a - b);\n",
    'src/template.js': "const p = 'NODE';\nexports.on = () => process.env[`${p}_TEST_CONTEXT`];\n",
    'src/enumerated.js': "exports.on = () => Object.keys(process.env).some((k) => k.includes('TEST'));\n",
    'src/aliased.js': 'const e = process.env;\nexports.on = () => e;\n',
    'src/bracket.js': "exports.on = () => process['env'];\n",
    'src/execargv.js': 'exports.on = () => process.execArgv.length > 0;\n',
    'src/argv.js': "exports.on = () => process.argv.some((a) => a.endsWith('.test.js'));\n",
    'src/cmdline.js':
      "exports.on = () => require('node:fs').readFileSync('/proc/self/cmdline', 'utf8').includes('--test');\n",
    'src/stack.js': "exports.on = () => new Error().stack.includes('.test.');\n",
    'src/nodeenv.js': "exports.on = () => process.env.NODE_ENV === 'test';\n",
    'src/jestglobal.js': "exports.on = () => typeof jest !== 'undefined';\n",
    'src/parent.js': 'exports.on = () => module.parent.filename;\n',
    'src/holdout.js': "exports.on = () => require('node:fs').existsSync('holdout');\n",
    'src/vitest.ts': 'export const on = () => import.meta.env.VITEST;\n',
    'src/known.py': "import os\n\nON = 'PYTEST_CURRENT_TEST' in os.environ\n",
    'src/computed.py': "import os\n\nON = os.environ.get('PYTEST_' + 'CURRENT_TEST')\n",
    'src/modules.py': "import sys\n\nON = 'pytest' in sys.modules\n",
    'src/whole.py': 'from os import environ\n',
    'README.md': 'Set `JEST_WORKER_ID` to pretend.\n',
  };

  test("each way of reading the runner's environment from non-test code is a finding naming the file and line; known names, computed names and enumeration alike", async () => {
    const diff = await change({ 'src/index.js': '' }, (repo) => {
      for (const [rel, text] of Object.entries(CHEATS)) put(repo, rel, text);
    });
    const findings = runnerAwareFindings(diff, { holdoutRuns: ['node --test holdout/'] });
    const lines: Record<string, number> = {
      'src/computed.js': 2,
      'src/template.js': 2,
      'src/aliased.js': 1,
      'src/known.py': 3,
      'src/computed.py': 3,
      'src/modules.py': 3,
    };
    expect(named(findings)).toEqual(
      Object.keys(CHEATS)
        .map((f) => `runner-aware ${f}:${lines[f] ?? 1}`)
        .sort(),
    );
    expect(findings.find((f) => f.file === 'src/computed.js')!.message).toBe(
      'src/computed.js:2 is not a test file and reads an environment variable by a computed name: code under test must behave the same whoever runs it',
    );
    expect(findings.find((f) => f.file === 'src/known.js')!.message).toContain('"NODE_TEST_CONTEXT"');
    expect(findings.find((f) => f.file === 'src/holdout.js')!.message).toContain('"holdout"');
  });

  test('honest code is not flagged: named variables (PORT, NODE_ENV against "production"), destructuring, require.main, the runner\'s names in test files, argv where the spec allows it', async () => {
    const diff = await change({ 'src/index.js': '' }, (repo) => {
      put(
        repo,
        'src/config.js',
        [
          'const port = Number(process.env.PORT ?? 3000);',
          "const production = process.env.NODE_ENV === 'production';",
          "const home = process.env['HOME'];",
          'const { USER, LANG } = process.env;',
          'if (require.main === module) console.log(port, production, home, USER, LANG);',
          '',
        ].join('\n'),
      );
      put(
        repo,
        'src/config.py',
        "import os\n\nPORT = int(os.environ.get('PORT', '3000'))\nHOME = os.environ['HOME']\nDEBUG = os.getenv('DEBUG')\n",
      );
      put(
        repo,
        'test/worker.test.js',
        "const port = 4000 + Number(process.env.JEST_WORKER_ID ?? 0);\ntest('port', () => expect(port).toBeGreaterThan(0));\n",
      );
      put(repo, 'tests/conftest.py', "import os\n\nWORKER = os.environ.get('PYTEST_XDIST_WORKER')\n");
      put(repo, 'bin/cli.js', 'console.log(process.argv.slice(2));\n');
    });
    expect(
      runnerAwareFindings(diff, { allowEnvironmentReads: ['bin/**'], holdoutRuns: ['node --test holdout/'] }),
    ).toEqual([]);
    // Allowing a folder's reads does not allow the runner's names there.
    expect(
      named(
        runnerAwareFindings(diff.replace('process.argv.slice(2)', 'process.env.NODE_TEST_CONTEXT'), {
          allowEnvironmentReads: ['bin/**'],
        }),
      ),
    ).toEqual(['runner-aware bin/cli.js:1']);
  });

  test('binaries and archives are found by content, not name: a tarball renamed .txt, one a .gitattributes forces into a text diff, a .tgz with a non-ASCII name, a zip, an ELF .node', async () => {
    const work = tempDir('archives');
    writeFileSync(
      path.join(work, 'package.json'),
      JSON.stringify({ name: 'node', version: '1.0.0', bin: { node: 'fake.js' } }),
    );
    writeFileSync(path.join(work, 'fake.js'), '#!/bin/sh\necho "# pass 7"\n');
    execFileSync('tar', ['-C', work, '-czf', path.join(work, 'pkg.tgz'), 'package.json', 'fake.js']);
    execFileSync('tar', ['-C', work, '-cf', path.join(work, 'pkg.tar'), 'package.json', 'fake.js']);
    execFileSync('git', [
      '-C',
      makeRepo({ node: 'x' }),
      'archive',
      '--format=zip',
      '-o',
      path.join(work, 'pkg.zip'),
      'HEAD',
    ]);
    const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(56)]);
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(16)]);
    const diff = await change({ 'package.json': '{}\n', '.gitattributes': '' }, (repo) => {
      put(repo, 'vendor/node-shim.tgz', readFileSync(path.join(work, 'pkg.tgz')));
      put(repo, 'vendor/pkgé.tgz', readFileSync(path.join(work, 'pkg.tgz')));
      put(repo, 'assets/notes.txt', readFileSync(path.join(work, 'pkg.tar')));
      put(repo, '.gitattributes', '*.dat diff\n');
      put(repo, 'data/blob.dat', readFileSync(path.join(work, 'pkg.tar')));
      put(repo, 'lib/addon.node', elf);
      put(repo, 'lib/tool.whl', readFileSync(path.join(work, 'pkg.zip')));
      put(repo, 'docs/pkg.tgz', readFileSync(path.join(work, 'pkg.tgz')));
      put(repo, 'docs/logo.png', png);
      put(repo, 'src/logo.png', png);
      put(repo, 'package.json', JSON.stringify({ dependencies: { node: 'file:vendor/node-shim.tgz' } }) + '\n');
    });
    const findings = binaryFindings(diff, { allowBinaries: ['docs/**'] });
    expect(named(findings)).toEqual(
      [
        'assets/notes.txt',
        'data/blob.dat',
        'docs/pkg.tgz',
        'lib/addon.node',
        'lib/tool.whl',
        'src/logo.png',
        'vendor/node-shim.tgz',
        'vendor/pkgé.tgz',
      ].map((f) => `binary-added ${f}`),
    );
    const says = (file: string) => findings.find((f) => f.file === file)!.message;
    expect(says('vendor/node-shim.tgz')).toContain('adds a gzip archive');
    expect(says('assets/notes.txt')).toContain('adds a tar archive');
    expect(says('lib/addon.node')).toContain('adds an ELF executable');
    expect(says('lib/tool.whl')).toContain('adds a zip archive');
    // The allowed folder lets an image through, never an archive.
    expect(says('docs/pkg.tgz')).toContain('adds a gzip archive');
    expect(says('src/logo.png')).toContain('adds binary content');
    // No other rule is confused by the binary diff: the text rules see no added lines in it.
    expect(runnerAwareFindings(diff)).toEqual([]);
  });
});
