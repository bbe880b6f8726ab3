import { ApplicationFailure } from '@temporalio/activity';
import { registeredRemote, type RemoteRepo } from '../../config/remotes';
import { withArtifactFile } from '../../store/artifacts';
import type { ActivityDeps } from '../../runtime/deps';
import { git, localRepoPath } from '../../git/git';
import { gitFailure } from '../../git/failure';
import { runPageUrl } from '../../config/runPage';
import { GitHubForge, githubRepoOf } from '../../forges/github';
import { forgeCall, forgeOf } from '../../forges/connect';
import { forgeFailure } from '../../forges/failure';
import { pushToRemote, stageInMirror } from '../../git/remotePush';
import { mirrorDir } from '../../git/mirror';
import { commitSignature } from '../../proof/commitSignature';
import { allowedSigners, COMMIT_SIGNER, listKeys } from '../../proof/keys';
import type { DeliverInput, Delivery } from '../../contracts/delivery';

/** The token `deliver.pr` uses: the worker's own, never a sandbox's. */
export const GITHUB_TOKEN = 'GITHUB_TOKEN';

export function deliverActivities(deps: ActivityDeps) {
  return {
    /**
     * Put the run's final commit on its branch in the source repo, from the checkpoint bundle (no workspace needed).
     * Idempotent: a branch already at the commit is left alone; a branch that moved elsewhere is never overwritten.
     * A registered remote's branch is pushed there instead (`deliverToRemote`).
     */
    async deliverBranch(input: DeliverInput): Promise<Delivery> {
      const remote = registeredRemote(input.repo, deps.home);
      if (remote) return deliverToRemote(deps, remote, input);
      const repo = localRepoPath(input.repo);
      if (repo === undefined) {
        throw ApplicationFailure.nonRetryable(
          `delivering to a remote repository (${input.repo}) needs push, which this version does not do yet`,
          'DeliveryUnsupported',
        );
      }
      const { commit } = input.checkpoint;
      const ref = `refs/heads/${input.branch}`;
      const current = await git(repo, ['rev-parse', '--verify', '--quiet', ref]).then(
        (s) => s.trim(),
        () => '',
      );
      if (current === commit) {
        // A retried delivery: the local branch is there; the push and the pull request may not be.
        return publish(deps, repo, input, `${input.branch} already at ${commit.slice(0, 12)}`);
      }
      if (current) {
        const isAncestor = await git(repo, ['merge-base', '--is-ancestor', current, commit]).then(
          () => true,
          () => false,
        );
        if (!isAncestor) {
          throw ApplicationFailure.nonRetryable(
            `branch ${input.branch} in ${input.repo} has moved to ${current.slice(0, 12)}; refusing to overwrite it`,
            'BranchMoved',
          );
        }
      }
      const { bundleId } = input.checkpoint;
      if (!bundleId)
        throw ApplicationFailure.nonRetryable('nothing to deliver: the run made no commit', 'NothingToDeliver');
      await withArtifactFile(deps.store, bundleId, (bundle) =>
        git(repo, ['fetch', '--quiet', '--no-write-fetch-head', bundle, `+${ref}:${ref}`]),
      ).catch((err) => {
        throw gitFailure(err, {
          type: 'DeliveryFailed',
          what: `could not deliver to ${input.repo}`,
          busy: `${input.repo} is busy (another git holds a lock)`,
        });
      });
      const delivery = await publish(deps, repo, input, `${input.branch} → ${commit.slice(0, 12)} in ${input.repo}`);
      await deps.runLog.append(input.runId, `\n=== deliver: ${delivery.summary} ===\n`);
      return delivery;
    },
  };
}

/**
 * A registered remote's delivery: the run's commit pushed to its branch at the registered URL (`pushToRemote`); on a
 * forge, with `deliver.pr`, the pull request found (or opened) and told of the proof.
 */
async function deliverToRemote(deps: ActivityDeps, remote: RemoteRepo, input: DeliverInput): Promise<Delivery> {
  const { commit, bundleId } = input.checkpoint;
  if (!bundleId)
    throw ApplicationFailure.nonRetryable('nothing to deliver: the run made no commit', 'NothingToDeliver');
  await stageInMirror(deps, remote, input.runId, input.branch, bundleId);
  const done: Delivery = { commit, summary: await pushToRemote(deps, remote, input.branch, commit) };
  if (input.pr && remote.forge !== 'none') {
    const forge = forgeOf(deps, remote);
    const { pr } = input;
    const opened = await forgeCall(() =>
      forge.openPullRequest({
        branch: input.branch,
        base: pr.base,
        commit,
        title: pr.title,
        body: pr.body,
        draft: pr.draft,
      }),
    );
    const signature = await signatureLine(deps, remote, commit);
    await forgeCall(() =>
      forge.comment(
        opened.number,
        `Delivered by Nightshift run [\`${input.runId}\`](${runPageUrl(deps.publicUrl, input.runId)}).\n\n${pr.body}\n${signature}`,
      ),
    );
    done.summary += `; ${opened.created ? 'opened' : 'found'} pull request #${opened.number} ${opened.url}`;
    done.pullRequest = { number: opened.number, url: opened.url };
  }
  await deps.runLog.append(input.runId, `\n=== deliver: ${done.summary} ===\n`);
  return done;
}

/**
 * The delivered commit's signature as this worker finds it in its mirror (git verify-commit against the server's
 * keys), not as the run claims it, and how anyone checks it in a clone.
 */
async function signatureLine(deps: ActivityDeps, remote: RemoteRepo, commit: string): Promise<string> {
  const allowed = allowedSigners(listKeys(deps.home), COMMIT_SIGNER);
  const checked = await commitSignature(mirrorDir(deps.home, deps.self.worker, remote.name), commit, allowed);
  const status = 'signer' in checked ? checked.signer : `NOT signed by the server: ${checked.problem}`;
  return `**Commit**: \`${commit}\`, ${status}. In a clone: \`nightshift verify --commit . ${commit}\``;
}

/** After the local branch: the push and the pull request the spec asks for, each looking before it acts. */
async function publish(deps: ActivityDeps, repo: string, input: DeliverInput, local: string): Promise<Delivery> {
  const { commit } = input.checkpoint;
  const done: Delivery = { commit, summary: local };
  if (!input.push && !input.pr) return done;
  done.summary += `; ${await pushBranch(repo, input.branch, commit)}`;
  if (!input.pr) return done;
  const token = deps.secrets.workerValue(GITHUB_TOKEN);
  if (!token)
    throw ApplicationFailure.nonRetryable(
      `deliver.pr is set but worker ${deps.self.worker} has no ${GITHUB_TOKEN} (its environment or secrets.env); the branch is pushed`,
      'NoGitHubToken',
    );
  const remote = (await git(repo, ['remote', 'get-url', 'origin'])).trim();
  const ghRepo = input.pr.repo ?? githubRepoOf(remote);
  if (!ghRepo)
    throw ApplicationFailure.nonRetryable(
      `cannot tell the GitHub repository from origin (${remote}); set deliver.pr.repo`,
      'NoGitHubRepo',
    );
  const pr = await new GitHubForge(deps.githubApiUrl, token, ghRepo)
    .openPullRequest({
      branch: input.branch,
      base: input.pr.base,
      commit,
      title: input.pr.title,
      body: `${input.pr.body}\n\n[Run ${input.runId}](${runPageUrl(deps.publicUrl, input.runId)}) on Nightshift`,
      draft: input.pr.draft,
    })
    .catch((err) => {
      throw forgeFailure(err, { unavailable: 'GitHubUnavailable', refused: 'PullRequestRefused' });
    });
  done.summary += `; ${pr.created ? 'opened' : 'found'} pull request #${pr.number} ${pr.url}`;
  done.pullRequest = { number: pr.number, url: pr.url };
  return done;
}

/**
 * Push the branch to `origin`, looking first: a remote branch already at the commit is left alone (a retried activity
 * pushes once), and a push the remote rejects (the branch moved) fails the run with git's reason. Never forced.
 */
async function pushBranch(repo: string, branch: string, commit: string): Promise<string> {
  const ref = `refs/heads/${branch}`;
  const remote = (await git(repo, ['remote', 'get-url', 'origin']).catch(() => '')).trim();
  if (!remote)
    throw ApplicationFailure.nonRetryable(`deliver.push is set but ${repo} has no remote "origin"`, 'NoRemote');
  const listed = await git(repo, ['ls-remote', 'origin', ref]).catch((err) => {
    throw gitFailure(err, { type: 'RemoteUnreachable', what: `cannot reach origin (${remote})`, retryable: true });
  });
  if (listed.split(/\s/)[0] === commit) return `origin already has ${branch} at ${commit.slice(0, 12)}`;
  await git(repo, ['push', '--quiet', '--no-verify', 'origin', `${commit}:${ref}`]).catch((err) => {
    throw gitFailure(err, { type: 'PushRejected', what: `push of ${branch} to ${remote} was rejected` });
  });
  return `pushed ${branch} to ${remote}`;
}
