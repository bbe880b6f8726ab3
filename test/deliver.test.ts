import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ActivityDeps } from '../activities/deps';
import { deliverActivities } from '../activities/deliver';
import { ArtifactStore } from '../store/artifacts';
import { RunLog } from '../store/runLog';
import { gitIn, makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// Delivery with deliver.push against a real bare git remote (a local path), whose post-receive hook counts pushes.

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** A repo whose origin is a fresh bare repo that logs every push it receives. */
function repoWithRemote(): { repo: string; remote: string; pushes: () => string[] } {
  const repo = makeRepo(VALUE_REPO);
  const remote = path.join(tempDir('remote'), 'origin.git');
  gitIn(path.dirname(remote), 'clone', '--quiet', '--bare', repo, remote);
  const log = path.join(path.dirname(remote), 'pushes.log');
  writeFileSync(path.join(remote, 'hooks', 'post-receive'), `#!/bin/sh\ncat >> ${log}\n`);
  chmodSync(path.join(remote, 'hooks', 'post-receive'), 0o755);
  gitIn(repo, 'remote', 'add', 'origin', remote);
  return { repo, remote, pushes: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []) };
}

test('deliver.push: the approved branch reaches origin with its trailers; a retried delivery pushes nothing twice', async () => {
  const { repo, remote, pushes } = repoWithRemote();
  const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt', { deliver: { push: true } }));
  await stack.waitFor(id, ['awaiting_approval']);
  await stack.api('POST', `/v1/runs/${id}/approve`, {});
  const done = await stack.waitFor(id, ['succeeded']);
  expect(gitIn(remote, 'rev-parse', done.branch).trim()).toBe(done.finalCommit);
  const message = gitIn(remote, 'log', '-1', '--format=%B', done.branch);
  expect(message).toContain(`Nightshift-Run: ${id}`);
  expect(message).toContain('Nightshift-Title: Set the value to two');
  expect(pushes()).toEqual([expect.stringMatching(new RegExp(` ${done.finalCommit} refs/heads/${done.branch}$`))]);
  expect(done.stages.find((s) => s.stage === 'deliver')?.summary).toContain(`pushed ${done.branch} to ${remote}`);

  // The activity run again, as Temporal would retry it: it looks first and pushes nothing.
  const deps = { home: stack.config.home, store: new ArtifactStore(stack.config.home), runLog: new RunLog(stack.config.home) } as ActivityDeps;
  const again = await deliverActivities(deps).deliverBranch({ runId: id, repo, branch: done.branch, checkpoint: done.checkpoint!, push: true });
  expect(again.summary).toBe(`${done.branch} already at ${done.finalCommit!.slice(0, 12)}; origin already has ${done.branch} at ${done.finalCommit!.slice(0, 12)}`);
  expect(pushes()).toHaveLength(1);
});

test('a push the remote rejects (the branch moved there) fails the run with that reason', async () => {
  const { repo, remote, pushes } = repoWithRemote();
  // Someone else's work on the same branch name, on origin only.
  const other = makeRepo({ 'other.txt': 'not ours\n' });
  gitIn(other, 'push', '--quiet', remote, 'HEAD:refs/heads/nightshift/shared');
  const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt', { branch: 'nightshift/shared', deliver: { push: true } }));
  await stack.waitFor(id, ['awaiting_approval']);
  await stack.api('POST', `/v1/runs/${id}/approve`, {});
  const state = await stack.waitFor(id, ['failed']);
  expect(state.failure?.stage).toBe('deliver');
  expect(state.failure?.reason).toMatch(new RegExp(`^push of nightshift/shared to ${remote.replace(/[.]/g, '\\.')} was rejected: .*(rejected|fetch first|non-fast-forward)`));
  expect(gitIn(remote, 'show', 'nightshift/shared:other.txt')).toBe('not ours\n');
  expect(pushes()).toHaveLength(1); // only the other's
});
