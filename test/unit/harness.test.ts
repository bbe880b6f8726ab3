import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { git } from '../../git/git';
import { harnessChanges } from '../../judge/harness';
import { makeRepo } from '../helpers/repos';

// Which changes touch the harness, read from git objects: the parts of shared files (package.json, pyproject.toml,
// setup.cfg) that are harness, and only those. The whole runs are in test/attacks/harness.test.ts.

const BASE = {
  'package.json': JSON.stringify({ name: 'x', scripts: { test: 'node t.js', build: 'tsc' }, dependencies: { a: '1' } }),
  'pyproject.toml': '[project]\nname = "x"\ndependencies = ["a"]\n\n[tool.pytest.ini_options]\naddopts = "-q"\n',
  'setup.cfg': '[metadata]\nname = x\n\n[tool:pytest]\ntestpaths = tests\n',
};

/** The harness changes of one commit that writes `files` over BASE. */
async function changesOf(files: Record<string, string>, harness?: { protect: string[]; allowChanges: boolean }) {
  const repo = makeRepo(BASE);
  const base = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
  for (const [f, text] of Object.entries(files)) writeFileSync(path.join(repo, f), text);
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'agent'], { cwd: repo });
  const run = (args: string[]) => git(repo, args);
  const changed = (await run(['diff', '--name-only', '-z', '--no-renames', base, 'HEAD'])).split('\0').filter(Boolean);
  return harnessChanges(run, base, (await run(['rev-parse', 'HEAD'])).trim(), changed, harness);
}

test('package.json: a changed script is named; dependencies and other keys are the agent\u2019s', async () => {
  expect(
    await changesOf({
      'package.json': JSON.stringify({
        name: 'y',
        scripts: { test: 'node t.js', build: 'tsc' },
        dependencies: { a: '2', b: '1' },
      }),
    }),
  ).toEqual([]);
  const [c] = await changesOf({
    'package.json': JSON.stringify({
      name: 'x',
      scripts: { test: 'echo ok', build: 'tsc', pretest: 'x' },
      dependencies: { a: '1' },
      jest: {},
    }),
  });
  expect(c).toMatchObject({ file: 'package.json', how: 'merge' });
  expect(c.message).toContain(
    'revert your change to package.json scripts.test, package.json scripts.pretest, package.json jest',
  );
  const [broken] = await changesOf({ 'package.json': '{ not json' });
  expect(broken).toMatchObject({ file: 'package.json', how: 'restore' });
});

test('pyproject.toml and setup.cfg: only their pytest settings (tables, dotted keys) are harness', async () => {
  expect(
    await changesOf({
      'pyproject.toml': BASE['pyproject.toml'].replace('["a"]', '["a", "b"]'),
      'setup.cfg': BASE['setup.cfg'].replace('name = x', 'name = y'),
    }),
  ).toEqual([]);
  const found = await changesOf({
    'pyproject.toml': BASE['pyproject.toml'].replace('"-q"', '"-q -k nothing"'),
    'setup.cfg': BASE['setup.cfg'].replace('[metadata]', '[metadata]\ntool:pytest.addopts = -k x'),
  });
  expect(found.map((c) => [c.file, c.how])).toEqual([
    ['pyproject.toml', 'restore'],
    ['setup.cfg', 'restore'],
  ]);
  expect(found[0].message).toContain('its pytest settings are part of the test harness');
});

test('harness.allowChanges: nothing is a harness change', async () => {
  expect(await changesOf({ 'package.json': '{}' }, { protect: [], allowChanges: true })).toEqual([]);
});
