import { ApplicationFailure } from '@temporalio/activity';
import type { Sandbox } from '../../sandbox/sandbox';
import { withArtifactFile } from '../../store/artifacts';
import type { ActivityDeps } from '../../runtime/deps';
import { gitFailure } from '../../git/failure';
import { withRepoSource } from '../../git/mirror';
import { withHeartbeat } from '../../runtime/heartbeat';
import { runRepo, layOutOver, freshSandbox, admitImage } from '../../workspaces/sandboxes';
import type { ProvisionInput, ProvisionResult } from '../../contracts/workspace';
import { restoreEnvironment } from '../../workspaces/environments';

/**
 * Clone the repo into the run's git directory and lay out the workspace on the run's branch, at the last checkpoint
 * when there is one. A provision that fails leaves nothing behind: no clone on disk, no sandbox slot held.
 */
export function provisionWorkspace(deps: ActivityDeps) {
  return async (input: ProvisionInput): Promise<ProvisionResult> => {
    return withHeartbeat(async () => {
      const sandbox = await freshSandbox(deps, input.runId, input.sandbox);
      try {
        await admitImage(deps, input.sandbox);
        return await provision(deps, sandbox, input);
      } catch (err) {
        await sandbox.teardown();
        deps.slots.release(input.runId);
        throw gitFailure(err, { type: 'GitFailed' });
      }
    });
  };
}

async function provision(deps: ActivityDeps, sandbox: Sandbox, input: ProvisionInput): Promise<ProvisionResult> {
  // Checked at submit, and again here: a run can also be started through Temporal, by a schedule made earlier, or
  // on a worker whose repos directory (or registered repos) differ. A remote is cloned from this worker's mirror.
  const repo = runRepo(deps, sandbox);
  await withRepoSource(deps, input.repo, input.runId, (source) =>
    repo.cloneFrom(source.path, { hardlinks: source.remote !== undefined }),
  );
  await repo.rememberDefaultBranch();
  const base = input.base ?? (await repo.branch());
  const tip = await repo.commitOf(`refs/heads/${base}`).catch(() => {
    throw ApplicationFailure.nonRetryable(`base branch "${base}" does not exist in ${input.repo}`, 'BadBase');
  });
  // A re-provisioned run stays on its base though the branch moved: its diff and bundles are against it.
  const baseCommit = input.baseCommit ?? tip;
  let start = baseCommit;
  if (input.checkpoint?.bundleId) {
    await withArtifactFile(deps.store, input.checkpoint.bundleId, (bundle) =>
      repo.git(['fetch', '--quiet', '--no-write-fetch-head', bundle, `refs/heads/${input.branch}`]),
    );
    start = input.checkpoint.commit;
  }
  await layOutOver(deps, repo, input.sandbox.driver, input.branch, start, baseCommit);
  if (input.environment) await restoreEnvironment(deps, input.runId, sandbox, repo, input.sandbox, input.environment);
  await deps.runLog.append(
    input.runId,
    `\n=== provision on ${deps.self.worker} ===\ncloned ${input.repo} (${base} at ${baseCommit.slice(0, 12)}) into a fresh workspace on branch ${input.branch}${input.checkpoint ? `, resumed from the checkpoint after ${input.checkpoint.afterStage} #${input.checkpoint.iteration} (${start.slice(0, 12)})` : ''}\n`,
  );
  deps.slots.provisioned(input.runId);
  return { base, baseCommit };
}
