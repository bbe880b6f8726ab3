import { ApplicationFailure, Context } from '@temporalio/activity';
import { temporal } from '@temporalio/proto';
import { DEFAULT_SANDBOX, SANDBOX_DRIVERS, type SandboxDriverName, type Spec } from '../../spec/schema';
import { claimQueue } from '../../contracts/taskQueues';
import type { Sandbox } from '../../sandbox/sandbox';
import { withArtifactFile } from '../../store/artifacts';
import type { WorkspaceRef } from '../../contracts/run';
import type { ActivityDeps } from '../../runtime/deps';
import { gitFailure } from '../../git/failure';
import { withRepoSource } from '../../git/mirror';
import { withHeartbeat } from '../../runtime/heartbeat';
import { openSandbox, runRepo, layOutOver, freshSandbox } from '../../workspaces/sandboxes';
import type { ProvisionInput, ProvisionResult } from '../../contracts/workspace';
import { restoreEnvironment } from '../../workspaces/environments';

/** How long a full worker holds a claim, hoping a slot frees up, before handing it back to the queue. */
const CLAIM_HOLD_MS = 2_000;

export function workspaceActivities(deps: ActivityDeps) {
  return {
    /**
     * Runs on the queue of the run's sandbox driver, which only workers offering it poll: the worker that picks it up
     * offers its own queue for the run's workspace, once it has a free sandbox slot. A full worker holds the claim a
     * moment (a slot may free up), then hands it back to the queue (a retryable failure), so a claim never waits on
     * one busy worker while another has room.
     * Without input: a run that claimed before slots existed (an old history), on the shared queue.
     */
    async claimWorkspace(input?: { runId: string }): Promise<WorkspaceRef> {
      if (!input) return deps.self;
      const ctx = Context.current();
      let taken = false;
      try {
        for (const until = Date.now() + CLAIM_HOLD_MS; !(taken = deps.slots.tryTake(input.runId)); ) {
          if (Date.now() > until) throw ApplicationFailure.retryable(`worker ${deps.self.worker} is full (${deps.slots.load}/${deps.slots.capacity} sandboxes)`, 'WorkerFull');
          ctx.heartbeat();
          await ctx.sleep(200);
        }
      } finally {
        if (!taken) deps.slots.stopWaiting(input.runId);
      }
      return deps.self;
    },

    /**
     * Which workers offer the driver (they poll its claim queue), waiting a little for workers that are just starting;
     * none at all fails the run now, saying what the fleet does offer, rather than leaving it queued unseen.
     */
    async findDriver(input: { driver: SandboxDriverName; taskQueue: string }): Promise<string[]> {
      const client = Context.current().client;
      const pollersOf = async (driver: SandboxDriverName) => {
        const res = await client.workflowService.describeTaskQueue({ namespace: client.options.namespace, taskQueue: { name: claimQueue(input.taskQueue, driver) }, taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY });
        return (res.pollers ?? []).map((p) => p.identity ?? 'unknown');
      };
      // A minute: right after a Temporal restart its poller lists are empty until the workers poll again.
      for (const deadline = Date.now() + 60_000; ; ) {
        const workers = await pollersOf(input.driver);
        if (workers.length) return workers;
        if (Date.now() > deadline) break;
        await Context.current().sleep(1000);
      }
      const offered = [];
      for (const driver of SANDBOX_DRIVERS) if ((await pollersOf(driver)).length) offered.push(driver);
      throw ApplicationFailure.nonRetryable(`no worker offers the ${input.driver} sandbox driver (the fleet offers: ${offered.join(', ') || 'nothing'}); see \`nightshift doctor\` on the workers`, 'NoSandboxDriver');
    },

    /**
     * Clone the repo into the run's git directory and lay out the workspace on the run's branch, at the last checkpoint
     * when there is one. A provision that fails leaves nothing behind: no clone on disk, no sandbox slot held.
     */
    async provisionWorkspace(input: ProvisionInput): Promise<ProvisionResult> {
      return withHeartbeat(async () => {
        const sandbox = await freshSandbox(deps, input.runId, input.sandbox);
        try {
          return await provision(deps, sandbox, input);
        } catch (err) {
          await sandbox.teardown();
          deps.slots.release(input.runId);
          throw gitFailure(err, { type: 'GitFailed' });
        }
      });
    },

    /** Kill whatever still runs in the run's sandbox and delete it. */
    async teardownWorkspace(input: { runId: string; sandbox?: Spec['sandbox'] }): Promise<void> {
      // Heartbeating like every workspace activity: a container's removal may outlast the short heartbeat timeout.
      return withHeartbeat(async () => {
        // Runs started before the sandbox was passed here used the default driver.
        const sandbox = await openSandbox(deps, input.runId, input.sandbox ?? DEFAULT_SANDBOX);
        await sandbox.teardown();
        deps.slots.release(input.runId);
        await deps.runLog.append(input.runId, `\n=== teardown: sandbox removed from ${deps.self.worker} ===\n`);
      });
    },
  };
}

async function provision(deps: ActivityDeps, sandbox: Sandbox, input: ProvisionInput): Promise<ProvisionResult> {
  // Checked at submit, and again here: a run can also be started through Temporal, by a schedule made earlier, or
  // on a worker whose repos directory (or registered repos) differ. A remote is cloned from this worker's mirror.
  const repo = runRepo(deps, sandbox);
  await withRepoSource(deps, input.repo, input.runId, (source) => repo.cloneFrom(source.path, { hardlinks: source.remote !== undefined }));
  await repo.rememberDefaultBranch();
  const base = input.base ?? (await repo.branch());
  const tip = await repo.commitOf(`refs/heads/${base}`).catch(() => {
    throw ApplicationFailure.nonRetryable(`base branch "${base}" does not exist in ${input.repo}`, 'BadBase');
  });
  // A re-provisioned run stays on its base though the branch moved: its diff and bundles are against it.
  const baseCommit = input.baseCommit ?? tip;
  let start = baseCommit;
  if (input.checkpoint?.bundleId) {
    await withArtifactFile(deps.store, input.checkpoint.bundleId, (bundle) => repo.git(['fetch', '--quiet', '--no-write-fetch-head', bundle, `refs/heads/${input.branch}`]));
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
