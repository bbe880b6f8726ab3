import { ApplicationFailure } from '@temporalio/activity';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { withArtifactFile } from '../../store/artifacts';
import type { ActivityDeps } from '../../runtime/deps';
import { git, GitError, paths } from '../../git/git';
import { gitFailure } from '../../git/failure';
import { withRepoSource } from '../../git/mirror';
import { storeBranchBundle } from '../../workspaces/sandboxes';
import type { RebaseInput, Rebase } from '../../contracts/rebase';

export function rebaseActivities(deps: ActivityDeps) {
  return {
    /**
     * Bring the run's branch onto its base's current tip, from the checkpoint bundle, in a scratch repo (no workspace
     * needed). A base that has not moved costs one ls-remote. Nothing is written to the source repo. A registered
     * remote is read from this worker's mirror, fetched first.
     */
    rebaseOntoBase(input: RebaseInput): Promise<Rebase> {
      return withRepoSource(deps, input.repo, undefined, (source) => rebaseFrom(deps, source.path, input));
    },
  };
}

/** rebaseOntoBase with the repo read from `source` (a local repo, or a remote's mirror). */
async function rebaseFrom(deps: ActivityDeps, source: string, input: RebaseInput): Promise<Rebase> {
  if ((await baseTip(source, input.base, input.repo)) === input.baseCommit) return { moved: false };
  const checkpointBundle = input.checkpoint.bundleId;
  if (!checkpointBundle)
    throw ApplicationFailure.nonRetryable('nothing to rebase: the run made no commit', 'NothingToDeliver');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `nightshift-rebase-${input.runId}-`));
  try {
    await git(dir, ['init', '--quiet']);
    await git(dir, ['fetch', '--quiet', source, `+refs/heads/${input.base}:refs/remotes/origin/${input.base}`]);
    // The tip as fetched: it may have moved again since the look above.
    const tip = (await git(dir, ['rev-parse', `refs/remotes/origin/${input.base}`])).trim();
    const grewFrom = await git(dir, ['merge-base', '--is-ancestor', input.baseCommit, tip]).then(
      () => true,
      () => false,
    );
    if (!grewFrom) {
      throw ApplicationFailure.nonRetryable(
        `base branch "${input.base}" was rewritten: ${input.baseCommit.slice(0, 12)}, which the run started from, is no longer in its history`,
        'BaseRewritten',
      );
    }
    await withArtifactFile(deps.store, checkpointBundle, (bundle) =>
      git(dir, ['fetch', '--quiet', bundle, `refs/heads/${input.branch}:refs/heads/${input.branch}`]),
    );
    await git(dir, ['checkout', '--quiet', input.branch]);
    const conflicts = await git(dir, ['rebase', '--quiet', '--onto', tip, input.baseCommit]).then(
      () => [],
      () => squashOnto(dir, input, tip),
    );
    const commit = (await git(dir, ['rev-parse', 'HEAD'])).trim();
    const changedFiles = paths(
      await git(dir, ['diff', '--name-only', '-z', '--no-renames', '--no-ext-diff', tip, commit]),
    );
    const diffId = await deps.store.put(
      await git(dir, ['diff', '--binary', '--no-ext-diff', '--no-textconv', tip, commit]),
    );
    const bundleId = await storeBranchBundle(deps, (args) => git(dir, args), input.branch, tip, input.runId);
    await deps.runLog.append(
      input.runId,
      `\n=== rebase: ${input.base} moved from ${input.baseCommit.slice(0, 12)} to ${tip.slice(0, 12)}; ${conflicts.length ? `conflicts in ${conflicts.join(', ')}, back to the agent` : `rebased cleanly to ${commit.slice(0, 12)}`} ===\n`,
    );
    return {
      moved: true,
      baseCommit: tip,
      checkpoint: {
        commit,
        bundleId,
        afterStage: 'rebase',
        iteration: input.iteration,
        ...(conflicts.length ? { conflicts } : {}),
      },
      diffId,
      changedFiles,
      conflicts,
    };
  } catch (err) {
    throw gitFailure(err, { type: 'RebaseFailed', what: `could not rebase onto ${input.base}` });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The commit the base branch points at in the source repo (`shown` in messages) now. */
async function baseTip(repo: string, base: string, shown: string): Promise<string> {
  const listed = await git(os.tmpdir(), ['ls-remote', repo, `refs/heads/${base}`]).catch((err) => {
    throw gitFailure(err, { type: 'RepoUnreachable', what: `cannot read ${shown}`, retryable: true });
  });
  const tip = listed.split(/\s/)[0];
  if (!tip) throw ApplicationFailure.nonRetryable(`base branch "${base}" no longer exists in ${shown}`, 'BadBase');
  return tip;
}

/**
 * After a rebase that conflicted: the run's changes as one commit on the tip, with git's conflict markers in the files
 * that clash, for the agent to resolve. Returns those files.
 */
async function squashOnto(dir: string, input: RebaseInput, tip: string): Promise<string[]> {
  await git(dir, ['rebase', '--abort']);
  // All of the run's changes as one commit on its old base, cherry-picked so git merges against that base.
  const squashed = (
    await git(dir, [
      'commit-tree',
      `${input.checkpoint.commit}^{tree}`,
      '-p',
      input.baseCommit,
      '-m',
      "the run's changes",
    ])
  ).trim();
  await git(dir, ['checkout', '--quiet', '-B', input.branch, tip]);
  await git(dir, ['cherry-pick', '--no-commit', squashed]).catch((err) => {
    if (!(err instanceof GitError)) throw err;
  });
  const conflicts = (await git(dir, ['diff', '--name-only', '--diff-filter=U'])).split('\n').filter(Boolean);
  if (!conflicts.length)
    throw new GitError(
      ['rebase', '--onto', tip, input.baseCommit],
      'the rebase failed, though its changes merge without conflicts',
      null,
    );
  await git(dir, ['add', '-A']);
  await git(dir, [
    'commit',
    '--quiet',
    '--no-verify',
    '-m',
    `Conflicts with ${input.base} at ${tip.slice(0, 12)}, to resolve: ${conflicts.join(', ')}\n\nNightshift-Run: ${input.runId}`,
  ]);
  return conflicts;
}
