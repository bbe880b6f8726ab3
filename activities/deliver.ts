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
      if (current === commit) return { commit, summary: `${input.branch} already at ${commit.slice(0, 12)}` };
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
      const summary = `${input.branch} → ${commit.slice(0, 12)} in ${input.repo}`;
      await deps.runLog.append(input.runId, `\n=== deliver: ${summary} ===\n`);
      return { commit, summary };
    },
  };
}
