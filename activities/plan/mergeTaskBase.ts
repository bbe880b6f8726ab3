import { ApplicationFailure } from '@temporalio/activity';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { git, localRepoPath, paths } from '../../git/git';
import type { ActivityDeps } from '../../runtime/deps';
import { storeBranchBundle } from '../../workspaces/sandboxes';
import type { MergeTaskBaseInput, MergeTaskBaseOutput } from '../../contracts/plan';

export function planActivities(deps: ActivityDeps) {
  return {
    /**
     * The plan's base with tasks' branches merged in, one after another, in a scratch repository (the source repo's
     * work tree is never touched): a task's base, made a branch of the source repo, or the integration's start, a
     * bundle. A conflict is committed with its markers and named: the agent resolves it, as after a rebase.
     * Idempotent: the branch or bundle is made afresh.
     */
    async mergeTaskBase(input: MergeTaskBaseInput): Promise<MergeTaskBaseOutput> {
      const repo = localRepoPath(input.repo);
      if (repo === undefined || !path.isAbsolute(repo))
        throw ApplicationFailure.nonRetryable(`a plan on ${input.repo} needs a local repository`, 'PlanUnsupported');
      const scratch = await mkdtemp(path.join(os.tmpdir(), 'nightshift-plan-'));
      try {
        await git(scratch, ['init', '--quiet']);
        const base = input.base ?? (await git(repo, ['symbolic-ref', '--short', 'HEAD'])).trim();
        const refs = [base, ...input.branches].map((b, i) => `+refs/heads/${b}:refs/heads/n${i}`);
        await git(scratch, ['fetch', '--quiet', '--no-write-fetch-head', repo, ...refs]);
        await git(scratch, ['checkout', '--quiet', '-B', 'merged', 'n0']);
        const conflicts = new Set<string>();
        const trailer = input.commitsOf ? `\n\nNightshift-Run: ${input.commitsOf}` : '';
        for (const [i, branch] of input.branches.entries()) {
          const merged = await git(scratch, [
            'merge',
            '--no-ff',
            '--no-edit',
            '-m',
            `merge ${branch}${trailer}`,
            `n${i + 1}`,
          ]).then(
            () => true,
            () => false,
          );
          if (merged) continue;
          const conflicted = paths(await git(scratch, ['diff', '--name-only', '-z', '--diff-filter=U']));
          if (!conflicted.length) throw ApplicationFailure.nonRetryable(`cannot merge ${branch}`, 'MergeFailed');
          conflicted.forEach((f) => conflicts.add(f));
          await git(scratch, ['add', '--all']);
          await git(scratch, [
            'commit',
            '--quiet',
            '--no-verify',
            '-m',
            `merge ${branch} (conflicts: ${conflicted.join(', ')})${trailer}`,
          ]);
        }
        const commit = (await git(scratch, ['rev-parse', 'HEAD'])).trim();
        let bundleId: string | undefined;
        if (input.as === 'branch') {
          const ref = `+refs/heads/merged:refs/heads/${input.target}`;
          await git(repo, ['fetch', '--quiet', '--no-write-fetch-head', scratch, ref]);
        } else {
          // The base's commit first: the plan's branch may be named like a scratch ref.
          const baseCommit = (await git(scratch, ['rev-parse', 'n0'])).trim();
          await git(scratch, ['update-ref', `refs/heads/${input.target}`, commit]);
          bundleId = await storeBranchBundle(deps, (args) => git(scratch, args), input.target, baseCommit, input.runId);
        }
        await deps.runLog.append(
          input.runId,
          `\n=== ${input.as === 'branch' ? 'base' : 'start'} ${input.target}: ${base} + ${input.branches.join(' + ')} → ${commit.slice(0, 12)}${conflicts.size ? `, conflicts in ${[...conflicts].join(', ')}` : ''} ===\n`,
        );
        return { commit, conflicts: [...conflicts], ...(bundleId ? { bundleId } : {}) };
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },
  };
}
