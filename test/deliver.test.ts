import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ActivityDeps } from '../runtime/deps';
import { deliverActivities } from '../activities/delivery/deliverBranch';
import { SecretStore } from '../secrets/secretStore';
import { openArtifactStore } from '../store/openArtifacts';
import { RunLog } from '../store/runLog';
import { gitIn, makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';
import { startGitHubStandIn, type GitHubStandIn } from './fixtures/githubApi';

// Delivery with deliver.push against a real bare git remote (a local path), whose post-receive hook counts pushes;
// deliver.pr against a stand-in of GitHub's REST API (GitHub is unreachable here) serving that remote's branches.

const GITHUB_TOKEN = `ghp_${'0123456789abcdefABCDEF0123456789abcd'}`;
let stack: TestStack;
let github: GitHubStandIn;
beforeAll(async () => {
  github = await startGitHubStandIn({ token: GITHUB_TOKEN });
  stack = await startTestStack({ env: { NIGHTSHIFT_GITHUB_API_URL: github.url } });
  // The worker's token, from secrets.env as a server admin would keep it; no spec names it.
  writeFileSync(path.join(stack.config.home, 'secrets.env'), `GITHUB_TOKEN=${GITHUB_TOKEN}\n`);
});
afterAll(async () => {
  await stack?.stop();
  await github?.close();
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
  return {
    repo,
    remote,
    pushes: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []),
  };
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
  const deps = {
    home: stack.config.home,
    store: openArtifactStore(stack.config),
    runLog: new RunLog(stack.config.home),
  } as ActivityDeps;
  const again = await deliverActivities(deps).deliverBranch({
    runId: id,
    repo,
    branch: done.branch,
    checkpoint: done.checkpoint!,
    push: true,
  });
  expect(again.summary).toBe(
    `${done.branch} already at ${done.finalCommit!.slice(0, 12)}; origin already has ${done.branch} at ${done.finalCommit!.slice(0, 12)}`,
  );
  expect(pushes()).toHaveLength(1);
});

test('a push the remote rejects (the branch moved there) fails the run with that reason', async () => {
  const { repo, remote, pushes } = repoWithRemote();
  // Someone else's work on the same branch name, on origin only.
  const other = makeRepo({ 'other.txt': 'not ours\n' });
  gitIn(other, 'push', '--quiet', remote, 'HEAD:refs/heads/nightshift/shared');
  const id = await stack.submit(
    spec(repo, 'echo 2 > src/value.txt', { branch: 'nightshift/shared', deliver: { push: true } }),
  );
  await stack.waitFor(id, ['awaiting_approval']);
  await stack.api('POST', `/v1/runs/${id}/approve`, {});
  const state = await stack.waitFor(id, ['failed']);
  expect(state.failure?.stage).toBe('deliver');
  expect(state.failure?.reason).toMatch(
    new RegExp(
      `^push of nightshift/shared to ${remote.replace(/[.]/g, '\\.')} was rejected: .*(rejected|fetch first|non-fast-forward)`,
    ),
  );
  expect(gitIn(remote, 'show', 'nightshift/shared:other.txt')).toBe('not ours\n');
  expect(pushes()).toHaveLength(1); // only the other's
});

test('deliver.pr: the approved branch is pushed and one pull request opened with the proof summary; a lost answer and a retried activity open no second', async () => {
  const { repo, remote, pushes } = repoWithRemote();
  github.addRepo('acme/value', remote);
  // GitHub makes the first pull request but its answer is lost: the activity fails, Temporal retries it.
  github.loseNextCreateResponse();
  const id = await stack.submit(
    spec(repo, 'echo 2 > src/value.txt', { deliver: { pr: { repo: 'acme/value', draft: true } } }),
  );
  await stack.waitFor(id, ['awaiting_approval']);
  await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'ship it' } });
  const done = await stack.waitFor(id, ['succeeded']);

  const pulls = github.pulls('acme/value');
  expect(pulls).toHaveLength(1);
  const [pr] = pulls;
  expect(pr).toMatchObject({
    number: 1,
    state: 'open',
    draft: true,
    title: 'Set the value to two',
    head: { ref: done.branch, sha: done.finalCommit },
    base: { ref: 'main' },
  });
  expect(pr.body).toContain(`Nightshift run \`${id}\``);
  expect(pr.body).toContain('| value | passed |');
  expect(pr.body).toContain(`**Approved by**: ${done.decisions[0].by} at ${done.decisions[0].at} — ship it`);
  expect(pr.body).toContain(`sha256:${done.proofId}`);
  expect(pr.body).toContain(`(${stack.config.publicUrl}/#/runs/${id})`);
  expect(done.pullRequest).toEqual({ number: 1, url: pr.html_url });
  expect(done.stages.find((s) => s.stage === 'deliver')?.summary).toContain(`found pull request #1 ${pr.html_url}`);
  expect(pushes()).toHaveLength(1); // deliver.pr implies the push, once
  const creates = () => github.requests.filter((r) => r.method === 'POST');
  expect(creates()).toHaveLength(1); // the retry looked first, found it, and did not create again
  expect(github.requests.every((r) => r.auth === `token ${GITHUB_TOKEN}`)).toBe(true);

  // The whole activity once more, as another retry would: nothing new anywhere.
  const deps = {
    home: stack.config.home,
    store: openArtifactStore(stack.config),
    runLog: new RunLog(stack.config.home),
    secrets: new SecretStore([], stack.config.secretsFile),
    githubApiUrl: github.url,
    publicUrl: stack.config.publicUrl,
    self: { worker: 'test' },
  } as ActivityDeps;
  const again = await deliverActivities(deps).deliverBranch({
    runId: id,
    repo,
    branch: done.branch,
    checkpoint: done.checkpoint!,
    pr: { repo: 'acme/value', base: 'main', draft: true, title: 't', body: 'b' },
  });
  expect(again.pullRequest).toEqual({ number: 1, url: pr.html_url });
  expect(creates()).toHaveLength(1);
  expect(github.pulls('acme/value')).toHaveLength(1);
  expect(pushes()).toHaveLength(1);
  // The token stays in the worker: not in the run's state, log or Temporal's history.
  expect(JSON.stringify(done)).not.toContain(GITHUB_TOKEN);
  expect((await stack.api('GET', `/v1/runs/${id}/logs`)).text).not.toContain(GITHUB_TOKEN);
  const history = await stack.client.workflow.getHandle(id).fetchHistory();
  expect(JSON.stringify(history)).not.toContain(GITHUB_TOKEN);
});

test('deliver.pr for a repository GitHub does not serve fails the run at deliver with GitHub’s answer; the branch is still pushed', async () => {
  const { repo, pushes } = repoWithRemote();
  const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt', { deliver: { pr: { repo: 'acme/nowhere' } } }));
  await stack.waitFor(id, ['awaiting_approval']);
  await stack.api('POST', `/v1/runs/${id}/approve`, {});
  const state = await stack.waitFor(id, ['failed']);
  expect(state.failure).toEqual({
    stage: 'deliver',
    reason: expect.stringMatching(/^GitHub refused the pull request for acme\/nowhere \(404\): Not Found/),
  });
  expect(pushes()).toHaveLength(1);
});

test('a delivery that finds the repo locked by another git (parallel deliveries) is retried, not failed', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt', { approval: { required: false } }));
  const done = await stack.waitFor(id, ['succeeded']);
  // As if another delivery were writing the same ref right now.
  gitIn(repo, 'branch', '-D', done.branch);
  const lock = path.join(repo, '.git', 'refs', 'heads', `${done.branch}.lock`);
  mkdirSync(path.dirname(lock), { recursive: true });
  writeFileSync(lock, '');
  const deps = {
    home: stack.config.home,
    store: openArtifactStore(stack.config),
    runLog: new RunLog(stack.config.home),
  } as ActivityDeps;
  const deliver = () =>
    deliverActivities(deps).deliverBranch({ runId: id, repo, branch: done.branch, checkpoint: done.checkpoint! });
  await expect(deliver()).rejects.toMatchObject({
    type: 'RepoBusy',
    nonRetryable: false,
    message: expect.stringMatching(/is busy \(another git holds a lock\)/),
  });
  rmSync(lock);
  await expect(deliver()).resolves.toMatchObject({ commit: done.finalCommit });
  expect(gitIn(repo, 'rev-parse', done.branch).trim()).toBe(done.finalCommit);
});
