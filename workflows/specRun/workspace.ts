// The run's workspace: claimed on a worker with a free sandbox slot, provisioned there (from the last checkpoint when
// there is one), moved to another worker when its worker is lost, torn down on every path.
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  log,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import type { WorkspaceQueueActivities } from '../../activities';
import { CLAIM_BY_DRIVER, TEARDOWN_LOST_WORKSPACE, WORKER_LOST_FROM_REGISTRY } from '../patches';
import type { WorkspaceRef } from '../../contracts/run';
import { fleetWorkflowId, unwatchWorkerSignal, watchWorkerSignal } from '../fleet';
import type { RunContext } from './context';
import { errorMessage, isWorkerLost, WorkerGone } from './errors';
import { provisionInput } from './inputs';
import { anyWorker, onClaimQueue, onWorkspaceWorker } from './proxies';
import { CAMPAIGN_RUN_PRIORITY } from '../../contracts/taskQueues';
import { MINUTE } from './time';

/**
 * A worker offering the run's sandbox driver, with a free sandbox slot: the claim waits in the driver's queue (and
 * on a full worker) as long as it takes, so a busy fleet queues runs rather than failing them.
 */
async function claimWorker(ctx: RunContext): Promise<WorkspaceRef> {
  if (!patched(CLAIM_BY_DRIVER)) return anyWorker.claimWorkspace();
  const { driver } = ctx.spec.sandbox;
  const { taskQueue } = workflowInfo();
  await anyWorker.findDriver({ driver, taskQueue });
  // A campaign's run claims after single runs (docs/campaigns.md, "Fairness").
  const priority = ctx.input.campaign ? CAMPAIGN_RUN_PRIORITY : undefined;
  return onClaimQueue(ctx.settings, taskQueue, driver, priority).claimWorkspace({ runId: ctx.state.id });
}

/** Claim a worker and (re)create the workspace there, from the last checkpoint when there is one. */
async function provision(ctx: RunContext): Promise<WorkspaceRef> {
  const { state } = ctx;
  const ws = await claimWorker(ctx);
  ctx.provisioningOn = ws;
  watch(ctx, ws);
  const result = await unlessLost(ctx, ws, () =>
    onWorkspaceWorker(ctx.settings, ws, 15 * MINUTE, `provision on ${ws.worker}`).provisionWorkspace(
      provisionInput(ctx),
    ),
  );
  ctx.provisioningOn = undefined;
  state.base = result.base;
  state.baseCommit = result.baseCommit;
  state.workspace = ws;
  return ws;
}

/** Run a step on the workspace's worker; when that worker is lost, re-provision on another and retry the step. */
export async function inWorkspace<T>(
  ctx: RunContext,
  startToCloseMs: number,
  summary: string,
  step: (acts: WorkspaceQueueActivities) => Promise<T>,
): Promise<T> {
  const { state, settings } = ctx;
  const lost: WorkspaceRef[] = [];
  for (;;) {
    try {
      if (!ctx.workspace) {
        ctx.workspace = await provision(ctx);
        tearDownLost(ctx, lost.splice(0));
      }
      const ws = ctx.workspace;
      return await unlessLost(ctx, ws, () => step(onWorkspaceWorker(settings, ws, startToCloseMs, summary)));
    } catch (err) {
      if (!isWorkerLost(err)) throw err;
      if (state.reprovisions >= settings.maxReprovisions) {
        throw ApplicationFailure.nonRetryable(
          `lost ${state.reprovisions + 1} workers while running "${summary}"; giving up`,
          'WorkersLost',
        );
      }
      state.reprovisions++;
      const gone = ctx.workspace ?? ctx.provisioningOn;
      if (gone) lost.push(gone);
      log.warn('worker lost; moving the run to another worker', { worker: gone?.worker, summary });
      ctx.workspace = undefined;
      ctx.provisioningOn = undefined;
    }
  }
}

/**
 * Ask the fleet registry to tell the run when the worker is gone (workflows/fleet.ts), once per worker. Fire and
 * forget: the workflow stays open until the registry has the message.
 */
function watch(ctx: RunContext, ws: WorkspaceRef): void {
  if (ctx.watched.has(ws.worker) || !patched(WORKER_LOST_FROM_REGISTRY)) return;
  ctx.watched.add(ws.worker);
  ctx.notifications.push(signalRegistry(watchWorkerSignal, ws.worker, ctx.state.id));
}

/** The registry stops watching for the run: its workspace is gone. */
function unwatchAll(ctx: RunContext): void {
  for (const worker of ctx.watched) ctx.notifications.push(signalRegistry(unwatchWorkerSignal, worker, ctx.state.id));
  ctx.watched.clear();
}

async function signalRegistry(
  signal: typeof watchWorkerSignal | typeof unwatchWorkerSignal,
  worker: string,
  runId: string,
): Promise<void> {
  try {
    await getExternalWorkflowHandle(fleetWorkflowId(workflowInfo().taskQueue)).signal(signal, { worker, runId });
  } catch (err) {
    // Without the registry the run falls back on the queue's timeout: slower, never wrong.
    log.warn('the fleet registry did not take the message', { worker, error: errorMessage(err) });
  }
}

/**
 * The step, given up as soon as the registry says its worker is gone: a stage scheduled on a dead worker's queue
 * would otherwise wait out the queue's schedule-to-start timeout (minutes), a running one its heartbeat timeout.
 */
async function unlessLost<T>(ctx: RunContext, ws: WorkspaceRef, step: () => Promise<T>): Promise<T> {
  if (!ctx.watched.has(ws.worker)) return step();
  const scope = new CancellationScope();
  let settled = false;
  let lost = false;
  const running = scope.run(step);
  // A run cancelled meanwhile rejects the condition too: the step's own cancellation says so.
  condition(() => settled || ctx.lostWorkers.has(ws.worker)).then(
    () => {
      if (settled) return;
      lost = true;
      scope.cancel();
    },
    () => undefined,
  );
  try {
    return await running;
  } catch (err) {
    throw lost ? new WorkerGone(ws.worker) : err;
  } finally {
    settled = true;
  }
}

/**
 * Tell workers presumed lost to drop the run's workspace, beside the run: one that is alive after all frees its
 * sandbox and slot; a dead one's task times out unclaimed. Not the worker the run is on now: it holds the workspace.
 */
function tearDownLost(ctx: RunContext, lost: WorkspaceRef[]): void {
  if (!lost.length || !patched(TEARDOWN_LOST_WORKSPACE)) return;
  const now = ctx.workspace?.worker;
  const unique = lost.filter((w, i) => w.worker !== now && lost.findIndex((x) => x.worker === w.worker) === i);
  // One the registry says is gone never takes the task: its files are the sweeper's when it starts again.
  for (const ws of unique.filter((w) => !ctx.lostWorkers.has(w.worker))) {
    const done = onWorkspaceWorker(ctx.settings, ws, 2 * MINUTE, `teardown on ${ws.worker}, presumed lost`)
      .teardownWorkspace({ runId: ctx.state.id, sandbox: ctx.spec.sandbox })
      .catch((err) =>
        log.info('a worker presumed lost did not tear down', { worker: ws.worker, error: errorMessage(err) }),
      );
    ctx.notifications.push(done);
  }
}

/** A workspace for the run, provisioned unless it holds one. */
export const ensureWorkspace = (ctx: RunContext) => inWorkspace(ctx, MINUTE, 'provision', async () => undefined);

export async function teardown(ctx: RunContext): Promise<void> {
  if (!ctx.workspace) return;
  const ws = ctx.workspace;
  ctx.workspace = undefined;
  ctx.state.workspace = undefined;
  await CancellationScope.nonCancellable(async () => {
    try {
      await unlessLost(ctx, ws, () =>
        onWorkspaceWorker(ctx.settings, ws, 2 * MINUTE, 'teardown').teardownWorkspace({
          runId: ctx.state.id,
          sandbox: ctx.spec.sandbox,
        }),
      );
    } catch (err) {
      // A lost worker's files are swept when a worker starts on that machine again.
      log.warn('teardown failed', { error: errorMessage(err) });
    }
  });
  unwatchAll(ctx);
}
