// The fleet's registry: every worker reports itself here every few seconds (capacity, load, what it offers), so the
// API can show the fleet from Temporal alone, across machines, without a shared disk.
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { WorkerReport } from '../contracts/run';

/** One registry per fleet, and a fleet is the workers of one task queue. */
export const fleetWorkflowId = (taskQueue: string) => `nightshift-fleet-${taskQueue}`;
/** Workers report this often; one silent for three reports is gone (killed, or its machine is). */
export const REPORT_INTERVAL_MS = 5_000;
const STALE_AFTER_MS = 3 * REPORT_INTERVAL_MS;

export const workerReportSignal = defineSignal<[WorkerReport]>('workerReport');
export const fleetQuery = defineQuery<WorkerReport[]>('fleet');

export async function fleetRegistry(known: WorkerReport[] = []): Promise<void> {
  const workers = new Map(known.map((w) => [w.name, w]));
  setHandler(workerReportSignal, (report) => {
    if (report.leaving) workers.delete(report.name);
    else workers.set(report.name, report);
    // Reports carry the worker's clock; compare each with the newest rather than with the workflow's time.
    const newest = Math.max(...[...workers.values()].map((w) => Date.parse(w.at)));
    for (const [name, w] of workers) if (newest - Date.parse(w.at) > STALE_AFTER_MS) workers.delete(name);
  });
  setHandler(fleetQuery, () => [...workers.values()].sort((a, b) => a.name.localeCompare(b.name)));
  // Reports never end; keep the history short by starting afresh with what is known.
  await condition(() => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > 2_000);
  await condition(allHandlersFinished);
  await continueAsNew<typeof fleetRegistry>([...workers.values()]);
}
