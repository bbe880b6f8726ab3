// The fleet's registry: every worker reports itself here every few seconds (capacity, load, what it offers), so the
// API can show the fleet from Temporal alone, across machines, without a shared disk.
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { WorkerReport } from '../contracts/run';
import { workerLostSignal } from './messages';

/** One registry per fleet, and a fleet is the workers of one task queue. */
export const fleetWorkflowId = (taskQueue: string) => `nightshift-fleet-${taskQueue}`;
/** Workers report this often; one silent for three reports is gone (killed, or its machine is). */
export const REPORT_INTERVAL_MS = 5_000;
const STALE_AFTER_MS = 3 * REPORT_INTERVAL_MS;

export const workerReportSignal = defineSignal<[WorkerReport]>('workerReport');
export const fleetQuery = defineQuery<WorkerReport[]>('fleet');

/** A run holding a workspace on `worker` (or about to): it is told the moment the worker is gone. */
export interface WorkerWatch {
  worker: string;
  runId: string;
}
export const watchWorkerSignal = defineSignal<[WorkerWatch]>('watchWorker');
export const unwatchWorkerSignal = defineSignal<[WorkerWatch]>('unwatchWorker');

/** What the registry carries over continue-as-new. */
export interface FleetMemory {
  /** Worker name → the runs watching it. */
  watchers: Record<string, string[]>;
  /** Workers seen going, newest last (bounded): a watch that comes late still hears. */
  gone: string[];
}
const GONE_KEPT = 200;

export async function fleetRegistry(known: WorkerReport[] = [], memory?: FleetMemory): Promise<void> {
  const workers = new Map(known.map((w) => [w.name, w]));
  const watchers = new Map(Object.entries(memory?.watchers ?? {}).map(([w, runs]) => [w, new Set(runs)]));
  const gone = memory?.gone ?? [];
  const tellWatchers = async (worker: string) => {
    const runs = [...(watchers.get(worker) ?? [])];
    watchers.delete(worker);
    gone.push(worker);
    gone.splice(0, gone.length - GONE_KEPT);
    await Promise.all(runs.map((runId) => tell(runId, worker)));
  };
  setHandler(workerReportSignal, async (report) => {
    const left: string[] = [];
    if (report.leaving) left.push(report.name);
    else workers.set(report.name, report);
    // Reports carry the worker's clock; compare each with the newest rather than with the workflow's time.
    const newest = Math.max(...[...workers.values()].map((w) => Date.parse(w.at)));
    for (const [name, w] of workers) if (newest - Date.parse(w.at) > STALE_AFTER_MS) left.push(name);
    // A leaving worker's last report may also find it stale: each is told once.
    const goneNow = [...new Set(left)];
    for (const name of goneNow) workers.delete(name);
    await Promise.all(goneNow.map(tellWatchers));
  });
  setHandler(watchWorkerSignal, async ({ worker, runId }) => {
    if (gone.includes(worker) && !workers.has(worker)) return tell(runId, worker);
    watchers.set(worker, (watchers.get(worker) ?? new Set()).add(runId));
  });
  setHandler(unwatchWorkerSignal, ({ worker, runId }) => {
    watchers.get(worker)?.delete(runId);
    if (watchers.get(worker)?.size === 0) watchers.delete(worker);
  });
  setHandler(fleetQuery, () => [...workers.values()].sort((a, b) => a.name.localeCompare(b.name)));
  // Reports never end; keep the history short by starting afresh with what is known.
  await condition(() => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > 2_000);
  await condition(allHandlersFinished);
  const carried = Object.fromEntries([...watchers].map(([w, runs]) => [w, [...runs]]));
  await continueAsNew<typeof fleetRegistry>([...workers.values()], { watchers: carried, gone });
}

/** A run that has ended by now has nothing to hear. */
async function tell(runId: string, worker: string): Promise<void> {
  try {
    await getExternalWorkflowHandle(runId).signal(workerLostSignal, worker);
  } catch (err) {
    log.info('a run watching a lost worker has ended', { runId, worker, error: String(err) });
  }
}
