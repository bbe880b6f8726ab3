import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Router } from 'express';
import type { Config } from '../config';
import { RUN_STATUSES } from '../workflows/types';
import { requireRole } from './auth';


/** Workers polling the shared queue, runs per state, and the queue's backlog. */
export function fleetRouter(client: Client, config: Config): Router {
  const router = Router();
  router.get('/', requireRole('viewer'), async (_req, res) => {
    const { TASK_QUEUE_TYPE_WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY } = temporal.api.enums.v1.TaskQueueType;
    const describe = (taskQueueType: number) =>
      client.workflowService.describeTaskQueue({ namespace: config.namespace, taskQueue: { name: config.taskQueue }, taskQueueType, reportStats: true });
    const [wf, act, ...counts] = await Promise.all([
      describe(TASK_QUEUE_TYPE_WORKFLOW),
      describe(TASK_QUEUE_TYPE_ACTIVITY),
      ...RUN_STATUSES.map((s) => client.workflow.count(`WorkflowType = 'specRun' AND NightshiftStatus = '${s}'`)),
    ]);
    const workers = new Map<string, { identity: string; lastSeen?: string }>();
    for (const p of [...(wf.pollers ?? []), ...(act.pollers ?? [])]) {
      const identity = p.identity ?? 'unknown';
      const seconds = Number(p.lastAccessTime?.seconds ?? 0);
      workers.set(identity, { identity, lastSeen: seconds ? new Date(seconds * 1000).toISOString() : undefined });
    }
    res.json({
      taskQueue: config.taskQueue,
      workers: [...workers.values()],
      runs: Object.fromEntries(RUN_STATUSES.map((s, i) => [s, counts[i].count])),
      queueDepth: {
        workflowTasks: Number(wf.stats?.approximateBacklogCount ?? 0),
        activityTasks: Number(act.stats?.approximateBacklogCount ?? 0),
      },
    });
  });
  return router;
}
