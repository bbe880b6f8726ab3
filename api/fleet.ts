import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Router } from 'express';
import { z } from 'zod';
import type { Config } from '../config';
import { RUN_STATUSES, type RunStatus } from '../contracts/run';
import { SANDBOX_DRIVERS } from '../spec/schema';
import { fleetQuery, fleetWorkflowId } from '../workflows/fleet';
import { SPEC_RUN_WORKFLOW } from '../workflows/names';
import { claimQueue } from '../contracts/taskQueues';
import { WorkerReportSchema } from '../contracts/workerReport';
import { requireRole } from './auth';

export const FleetSchema = z.object({
  taskQueue: z.string(),
  workers: z
    .array(
      WorkerReportSchema.omit({ leaving: true })
        .partial()
        .extend({ identity: z.string(), lastSeen: z.iso.datetime().optional() }),
    )
    .describe(
      'Workers polling the queue, with what each last reported to the fleet registry (capacity, load, drivers, agent CLIs, memory)',
    ),
  runs: z
    .record(z.enum(RUN_STATUSES), z.number().int())
    .describe("Runs on this server's task queue, per status (the NightshiftStatus search attribute)"),
  queueDepth: z
    .object({
      workflowTasks: z.number().int(),
      activityTasks: z.number().int(),
      claims: z
        .number()
        .int()
        .describe("Runs waiting in their sandbox driver's claim queue for a worker with a free slot"),
    })
    .describe('Tasks no worker has picked up yet: on the shared queue, and claims'),
});
export type FleetSnapshot = z.infer<typeof FleetSchema>;

/** Workers polling the shared queue, runs per state, and the queue's backlog: for /v1/fleet and /metrics. */
export async function fleetSnapshot(client: Client, config: Config): Promise<FleetSnapshot> {
  const { TASK_QUEUE_TYPE_WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY } = temporal.api.enums.v1.TaskQueueType;
  const describe = (taskQueueType: number, name = config.taskQueue) =>
    client.workflowService.describeTaskQueue({
      namespace: config.namespace,
      taskQueue: { name },
      taskQueueType,
      reportStats: true,
    });
  const [wf, act, claims, ...counts] = await Promise.all([
    describe(TASK_QUEUE_TYPE_WORKFLOW),
    describe(TASK_QUEUE_TYPE_ACTIVITY),
    // Runs waiting for a sandbox slot wait here, not on the shared queue.
    Promise.all(
      SANDBOX_DRIVERS.map((driver) => describe(TASK_QUEUE_TYPE_ACTIVITY, claimQueue(config.taskQueue, driver))),
    ),
    ...RUN_STATUSES.map((s) =>
      client.workflow.count(
        `WorkflowType = '${SPEC_RUN_WORKFLOW}' AND TaskQueue = '${config.taskQueue}' AND NightshiftStatus = '${s}'`,
      ),
    ),
  ]);
  const workers = new Map<string, FleetSnapshot['workers'][number]>();
  for (const p of [...(wf.pollers ?? []), ...(act.pollers ?? [])]) {
    const identity = p.identity ?? 'unknown';
    const seconds = Number(p.lastAccessTime?.seconds ?? 0);
    workers.set(identity, { identity, lastSeen: seconds ? new Date(seconds * 1000).toISOString() : undefined });
  }
  // The registry is a workflow: only ask when some worker polls to answer, else the query would wait.
  const reports = wf.pollers?.length
    ? await client.workflow
        .getHandle(fleetWorkflowId(config.taskQueue))
        .query(fleetQuery)
        .catch(() => [])
    : [];
  for (const { leaving: _leaving, ...report } of reports) {
    workers.set(report.name, { ...workers.get(report.name), ...report, identity: report.name });
  }
  return {
    taskQueue: config.taskQueue,
    workers: [...workers.values()],
    runs: Object.fromEntries(RUN_STATUSES.map((s, i) => [s, counts[i].count])) as Record<RunStatus, number>,
    queueDepth: {
      workflowTasks: Number(wf.stats?.approximateBacklogCount ?? 0),
      activityTasks: Number(act.stats?.approximateBacklogCount ?? 0),
      claims: claims.reduce((n, q) => n + Number(q.stats?.approximateBacklogCount ?? 0), 0),
    },
  };
}

export function fleetRouter(client: Client, config: Config): Router {
  const router = Router();
  router.get('/', requireRole('viewer'), async (_req, res) => {
    res.json(await fleetSnapshot(client, config));
  });
  return router;
}
