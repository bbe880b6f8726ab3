import * as path from 'node:path';
import { prepareRun } from '../../admission/prepareRun';
import { loadConfig } from '../../config';
import { RemoteRepos } from '../../config/remotes';
import { makeRepo, tempDir } from '../helpers/repos';

// On a registered forge repo a run's delivery is a pull request unless the spec says `deliver: {pr: false}`
// (issue 25): settled at admission, so the workflow gets settings or nothing.

const local = makeRepo({ 'README.md': 'x\n' });
const config = loadConfig({ NIGHTSHIFT_HOME: tempDir('forge-home'), NIGHTSHIFT_REPOS_DIR: path.dirname(local) });
const remotes = new RemoteRepos(config.home);
remotes.add({ name: 'calc', url: 'https://gitea.example.com/acme/calc.git', forge: 'gitea', credential: 'GITEA_T' });
remotes.add({ name: 'plain', url: 'https://git.example.com/acme/plain.git' });

const admitted = (repo: string, deliver?: object) =>
  prepareRun(
    JSON.stringify({
      title: 't',
      repo,
      agent: { kind: 'command', command: ['true'] },
      ...(deliver ? { deliver } : {}),
    }),
    'application/json',
    'admin',
    config,
  );

test.each([
  ['a forge repo, nothing said: a pull request, reviewed on the forge', 'calc', undefined, { draft: false }, 'gitea'],
  ['a forge repo, `pr: false`: pushed only, not reviewed there', 'calc', { pr: false }, undefined, undefined],
  ['a forge repo, `pr: {draft: true}`: as asked', 'calc', { pr: { draft: true } }, { draft: true }, 'gitea'],
  ['a registered repo on no forge: pushed only', 'plain', undefined, undefined, undefined],
  ['a local repo: the branch only', path.basename(local), undefined, undefined, undefined],
])('%s', (_name, repo, deliver, pr, forge) => {
  const input = admitted(repo, deliver);
  expect(input.spec.deliver.pr).toEqual(pr);
  expect('pr' in input.spec.deliver).toBe(pr !== undefined);
  expect(input.forge?.kind).toBe(forge);
});
