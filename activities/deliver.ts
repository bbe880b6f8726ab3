import { ApplicationFailure } from '@temporalio/activity';
import type { Checkpoint } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { git, GitError, localRepoPath } from './git';
import { checkpointBundlePath } from './workspace';

export interface DeliverInput {
  runId: string;
  repo: string;
  branch: string;
  checkpoint: Checkpoint;
  /** Also push the branch to the repo's `origin` (`deliver.push`). */
  push?: boolean;
}

export function deliverActivities(deps: ActivityDeps) {
  return {
    /**
     * Put the run's final commit on its branch in the source repo, from the checkpoint bundle (no workspace needed).
     * Idempotent: a branch already at the commit is left alone; a branch that moved elsewhere is never overwritten.
     */
    async deliverBranch(input: DeliverInput): Promise<{ commit: string; summary: string }> {
      const repo = localRepoPath(input.repo);
      if (repo === undefined) {
        throw ApplicationFailure.nonRetryable(`delivering to a remote repository (${input.repo}) needs push, which this version does not do yet`, 'DeliveryUnsupported');
      }
      const { commit } = input.checkpoint;
      const ref = `refs/heads/${input.branch}`;
      const current = await git(repo, ['rev-parse', '--verify', '--quiet', ref]).then((s) => s.trim(), () => '');
      if (current === commit) {
        // A retried delivery: the local branch is there; the push may not be.
        const pushed = input.push ? `; ${await pushBranch(repo, input.branch, commit)}` : '';
        return { commit, summary: `${input.branch} already at ${commit.slice(0, 12)}${pushed}` };
      }
      if (current) {
        const isAncestor = await git(repo, ['merge-base', '--is-ancestor', current, commit]).then(() => true, () => false);
        if (!isAncestor) {
          throw ApplicationFailure.nonRetryable(`branch ${input.branch} in ${input.repo} has moved to ${current.slice(0, 12)}; refusing to overwrite it`, 'BranchMoved');
        }
      }
      const bundle = checkpointBundlePath(deps, input.checkpoint);
      if (!bundle) throw ApplicationFailure.nonRetryable('nothing to deliver: the run made no commit', 'NothingToDeliver');
      try {
        await git(repo, ['fetch', '--quiet', bundle, `+${ref}:${ref}`]);
      } catch (err) {
        if (err instanceof GitError) throw ApplicationFailure.nonRetryable(`could not deliver to ${input.repo}: ${err.message}`, 'DeliveryFailed');
        throw err;
      }
      let summary = `${input.branch} → ${commit.slice(0, 12)} in ${input.repo}`;
      if (input.push) summary += `; ${await pushBranch(repo, input.branch, commit)}`;
      await deps.runLog.append(input.runId, `\n=== deliver: ${summary} ===\n`);
      return { commit, summary };
    },
  };
}

/**
 * Push the branch to `origin`, looking first: a remote branch already at the commit is left alone (a retried activity
 * pushes once), and a push the remote rejects (the branch moved) fails the run with git's reason. Never forced.
 */
async function pushBranch(repo: string, branch: string, commit: string): Promise<string> {
  const ref = `refs/heads/${branch}`;
  const remote = (await git(repo, ['remote', 'get-url', 'origin']).catch(() => '')).trim();
  if (!remote) throw ApplicationFailure.nonRetryable(`deliver.push is set but ${repo} has no remote "origin"`, 'NoRemote');
  let remoteAt: string;
  try {
    remoteAt = (await git(repo, ['ls-remote', 'origin', ref])).split(/\s/)[0];
  } catch (err) {
    if (err instanceof GitError) throw ApplicationFailure.retryable(`cannot reach origin (${remote}): ${err.message}`, 'RemoteUnreachable');
    throw err;
  }
  if (remoteAt === commit) return `origin already has ${branch} at ${commit.slice(0, 12)}`;
  try {
    await git(repo, ['push', '--quiet', '--no-verify', 'origin', `${commit}:${ref}`]);
  } catch (err) {
    if (err instanceof GitError) throw ApplicationFailure.nonRetryable(`push of ${branch} to ${remote} was rejected: ${err.message}`, 'PushRejected');
    throw err;
  }
  return `pushed ${branch} to ${remote}`;
}
