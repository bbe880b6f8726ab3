import { ApplicationFailure, Context } from '@temporalio/activity';
import { temporal } from '@temporalio/proto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_SANDBOX, SANDBOX_DRIVERS, type SandboxDriverName, type Spec } from '../../spec/schema';
import { claimQueue } from '../../contracts/taskQueues';
import { policyFor } from '../../sandbox/policy';
import type { Sandbox } from '../../sandbox/sandbox';
import { withArtifactFile } from '../../store/artifacts';
import type { Checkpoint, WorkspaceRef } from '../../contracts/run';
import type { ActivityDeps } from '../deps';
import { RunRepo, type Git } from '../../git/git';
import { gitFailure } from '../../git/failure';
import { withRepoSource } from '../../git/mirror';
import { withHeartbeat } from '../heartbeat';
import { provideEnvironment, type EnvironmentInput } from '../setup/prepareEnvironment';
import { CheckoutCache } from '../../git/checkouts';
import { SANDBOX_UID } from '../../sandbox/layout';

/** How long a full worker holds a claim, hoping a slot frees up, before handing it back to the queue. */
const CLAIM_HOLD_MS = 2_000;

export interface ProvisionInput {
  runId: string;
  repo: string;
  base?: string;
  branch: string;
  sandbox: Spec['sandbox'];
  checkpoint?: Checkpoint;
  /** The base commit the run's branch grew from, once it has one: only the rebase stage moves a run to a newer one. */
  baseCommit?: string;
  /** The run's environment, once its setup stage made it: a re-provision restores it (or makes it again). */
  environment?: EnvironmentInput;
}

export interface ProvisionResult {
  base: string;
  baseCommit: string;
}

/** Where this worker keeps its sandboxes: one folder per worker, so a dead worker's leftovers can be swept. */
export function workerDir(home: string, worker: string): string {
  return path.join(home, 'work', worker);
}

export function sandboxRoot(deps: ActivityDeps, runId: string): string {
  return path.join(workerDir(deps.home, deps.self.worker), runId);
}

/** The run's sandbox on this worker, with the driver and limits of its spec. */
export async function openSandbox(deps: ActivityDeps, runId: string, sandbox: Spec['sandbox']): Promise<Sandbox> {
  const driver = deps.drivers[sandbox.driver];
  if (!driver) {
    const offered = Object.keys(deps.drivers).join(', ') || 'none';
    throw ApplicationFailure.nonRetryable(`worker ${deps.self.worker} has no ${sandbox.driver} sandbox driver (it offers: ${offered}); see \`nightshift doctor\``, 'NoSandboxDriver');
  }
  return driver.open({ runId, root: sandboxRoot(deps, runId), ...policyFor(sandbox, deps.egressInternal) });
}

/** The branch's commits above `baseCommit` as a git bundle in the artifact store; none when there are none. */
export async function storeBranchBundle(deps: ActivityDeps, git: Git, branch: string, baseCommit: string, runId: string): Promise<string | undefined> {
  const commit = (await git(['rev-parse', `refs/heads/${branch}`])).trim();
  if (commit === baseCommit) return undefined;
  const file = path.join(os.tmpdir(), `nightshift-${runId}-${process.pid}.bundle`);
  try {
    await git(['bundle', 'create', '--quiet', file, `refs/heads/${branch}`, `^${baseCommit}`]);
    return await deps.store.putFile(file);
  } finally {
    await fs.rm(file, { force: true });
  }
}

/**
 * The run's sandbox with nothing of an earlier attempt in it (a retried or moved provision, a check's sandbox made
 * again): torn down first, its container (which may hold an earlier workspace mounted) and overlays gone too.
 */
async function freshSandbox(deps: ActivityDeps, runId: string, policy: Spec['sandbox']): Promise<Sandbox> {
  await (await openSandbox(deps, runId, policy)).teardown();
  return openSandbox(deps, runId, policy);
}

/** Where a sandbox's workspace overlay keeps what was written over the checkout (`upper/`, `work/`). */
export const workspaceLayer = (root: string) => path.join(root, 'workspace-layer');

/**
 * The workspace at `commit` on `branch`, laid over a kept checkout of `base` (git/checkouts.ts): git writes
 * only what differs from it, into the sandbox's own layer (`<root>/workspace-layer`, outside every mount).
 */
export async function layOutOver(deps: Pick<ActivityDeps, 'home' | 'self'>, repo: RunRepo, driver: Spec['sandbox']['driver'], branch: string, commit: string, base: string | undefined): Promise<void> {
  if (!base) return repo.layOut(branch, commit);
  const checkouts = new CheckoutCache(path.join(workerDir(deps.home, deps.self.worker), '.checkouts'));
  const atBase = await checkouts.layOver(repo, base, workspaceLayer(repo.root), driver === 'docker' ? SANDBOX_UID : undefined);
  await repo.layOut(branch, commit, { fresh: true, checkedOut: atBase && commit === base });
}

/** The run's repository on this worker: its git directory beside the sandbox, the workspace its work tree. */
export function runRepo(deps: ActivityDeps, sandbox: Sandbox): RunRepo {
  return new RunRepo(sandboxRoot(deps, sandbox.runId), sandbox.workspace);
}

export interface CheckoutOptions {
  /** The run's environment, for the sandbox to have it too. */
  environment?: EnvironmentInput;
  /**
   * A commit of the repo's own (the base; never an agent's, whose attributes would shape the files other runs see) to
   * lie over as a kept checkout; none: the files are written out.
   */
  over?: string;
}

/**
 * `work` in a sandbox of its own (`<run id>-<suffix>`, with `policy`) on a fresh checkout of `commit` from the run's
 * git directory: what was committed, nothing the agent left beside it. The sandbox is removed afterwards, whatever
 * happened, and before, in case an earlier attempt (a retry, a restarted worker) left it.
 */
export async function inCheckoutSandbox<T>(deps: ActivityDeps, runId: string, suffix: string, policy: Spec['sandbox'], commit: string, work: (sandbox: Sandbox, repo: RunRepo) => Promise<T>, opts: CheckoutOptions = {}): Promise<T> {
  const id = `${runId}-${suffix}`;
  const sandbox = await freshSandbox(deps, id, policy);
  try {
    const repo = new RunRepo(sandboxRoot(deps, id), sandbox.workspace);
    // Hard links: the run's git directory is the server's own (outside every sandbox), and every check runs in one of
    // these: its objects are linked, not copied, however big the repo.
    await repo.cloneFrom(path.join(sandboxRoot(deps, runId), 'git'), { hardlinks: true });
    await layOutOver(deps, repo, policy.driver, await repo.branch(), commit, opts.over);
    if (opts.environment) await restoreEnvironment(deps, runId, sandbox, repo, policy, opts.environment);
    return await work(sandbox, repo);
  } finally {
    await sandbox.teardown();
  }
}

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

/** The run's environment in a sandbox other than the setup stage's: one that cannot be had now ends the step. */
async function restoreEnvironment(deps: ActivityDeps, runId: string, sandbox: Sandbox, repo: RunRepo, policy: Spec['sandbox'], environment: EnvironmentInput): Promise<void> {
  const got = await provideEnvironment(deps, runId, sandbox, repo, policy, environment);
  if ('failed' in got) throw ApplicationFailure.nonRetryable(`the run's environment could not be made again: ${got.failed}`, 'SetupFailed');
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
