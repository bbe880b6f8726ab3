import type { Client } from '@temporalio/client';
import { Router } from 'express';
import type { Config } from '../config';
import { RUN_STATUSES } from '../contracts/run';
import { requireRole } from './auth';
import { fleetSnapshot } from './fleet';
import { STAGE_BUCKETS, StageDurations } from './stageDurations';

/** GET /metrics: Prometheus text exposition (format 0.0.4), written by hand: three metrics need no library. */
export function metricsRouter(client: Client, config: Config): Router {
  const router = Router();
  const durations = new StageDurations(client, config);
  router.get('/', requireRole('viewer'), async (_req, res) => {
    const [fleet] = await Promise.all([fleetSnapshot(client, config), durations.refresh()]);
    const lines = [
      "# HELP nightshift_runs Runs on this server's task queue by status (Temporal visibility).",
      '# TYPE nightshift_runs gauge',
      ...RUN_STATUSES.map((s) => `nightshift_runs{status="${s}"} ${fleet.runs[s]}`),
      "# HELP nightshift_queue_depth Tasks waiting for a worker: the shared queue's workflow and activity backlog, and claims waiting for a sandbox slot.",
      '# TYPE nightshift_queue_depth gauge',
      `nightshift_queue_depth ${fleet.queueDepth.workflowTasks + fleet.queueDepth.activityTasks + fleet.queueDepth.claims}`,
      '# HELP nightshift_stage_duration_seconds Stage durations of finished runs, as their workflows recorded them.',
      '# TYPE nightshift_stage_duration_seconds histogram',
    ];
    for (const [stage, h] of durations.snapshot()) {
      STAGE_BUCKETS.forEach((bound, i) =>
        lines.push(`nightshift_stage_duration_seconds_bucket{stage="${stage}",le="${bound}"} ${h.buckets[i]}`),
      );
      lines.push(`nightshift_stage_duration_seconds_bucket{stage="${stage}",le="+Inf"} ${h.count}`);
      lines.push(`nightshift_stage_duration_seconds_sum{stage="${stage}"} ${h.sum}`);
      lines.push(`nightshift_stage_duration_seconds_count{stage="${stage}"} ${h.count}`);
    }
    res.type('text/plain; version=0.0.4; charset=utf-8').send(lines.join('\n') + '\n');
  });
  return router;
}
