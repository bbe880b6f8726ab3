import type { Client } from '@temporalio/client';
import { Router } from 'express';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { readSpendRows } from '../budget/ledger';
import { totalsByModel } from '../budget/spendView';
import type { Config } from '../config';
import { RUN_STATUSES } from '../contracts/run';
import { requireRole } from './auth';
import { fleetSnapshot } from './fleet';
import { STAGE_BUCKETS, StageDurations } from './stageDurations';

const STAGE_DURATION = 'nightshift_stage_duration_seconds';
const STAGE_DURATION_HELP = 'Stage durations of finished runs, as their workflows recorded them.';

/**
 * nightshift_stage_duration_seconds: its buckets come whole from StageDurations' snapshot, which prom-client's
 * Histogram cannot take (it counts one observation at a time), so its samples are made here, `stage` before `le`.
 */
class StageDurationHistogram extends Histogram<'stage'> {
  constructor(private readonly durations: StageDurations) {
    super({
      name: STAGE_DURATION,
      help: STAGE_DURATION_HELP,
      labelNames: ['stage'],
      buckets: STAGE_BUCKETS,
      registers: [],
    });
  }

  /** What the registry writes (prom-client asks a Histogram for this, not for get(), and get() reads it too). */
  getForPromString() {
    const sample = (suffix: string, labels: Record<string, string | number>, value: number) => ({
      metricName: `${STAGE_DURATION}_${suffix}`,
      labels,
      sharedLabels: {},
      value,
    });
    const values = [...this.durations.snapshot()].flatMap(([stage, h]) => [
      ...STAGE_BUCKETS.map((le, i) => sample('bucket', { stage, le }, h.buckets[i])),
      sample('bucket', { stage, le: '+Inf' }, h.count),
      sample('sum', { stage }, h.sum),
      sample('count', { stage }, h.count),
    ]);
    return Promise.resolve({
      name: STAGE_DURATION,
      help: STAGE_DURATION_HELP,
      type: 'histogram',
      aggregator: 'sum',
      values,
    });
  }
}

/**
 * The ledger's totals per model (budget/ledger.ts), read once per scrape by `totals` (every worker's gateways book
 * there) and written by both counters.
 */
function registerModelCounters(registry: Registry, totals: () => ReturnType<typeof totalsByModel>): void {
  registry.registerMetric(
    new Counter({
      name: 'nightshift_model_tokens_total',
      help: 'Model tokens the gateways metered, per model and kind (input or output), from the spend ledger.',
      labelNames: ['model', 'kind'],
      registers: [],
      collect() {
        this.reset();
        for (const [model, t] of totals()) {
          this.inc({ model, kind: 'input' }, t.inputTokens);
          this.inc({ model, kind: 'output' }, t.outputTokens);
        }
      },
    }),
  );
  registry.registerMetric(
    new Counter({
      name: 'nightshift_model_cost_usd_total',
      help: 'Model cost in US dollars the gateways metered, per model, from the spend ledger.',
      labelNames: ['model'],
      registers: [],
      collect() {
        this.reset();
        for (const [model, t] of totals()) this.inc({ model }, t.costUsd);
      },
    }),
  );
}

/** GET /metrics: Prometheus text exposition (format 0.0.4) from a registry of its own, not prom-client's global one. */
export function metricsRouter(client: Client, config: Config): Router {
  const router = Router();
  const durations = new StageDurations(client, config);
  const registry = new Registry();
  const runs = new Gauge({
    name: 'nightshift_runs',
    help: "Runs on this server's task queue by status (Temporal visibility).",
    labelNames: ['status'],
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: 'nightshift_queue_depth',
    help: "Tasks waiting for a worker: the shared queue's workflow and activity backlog, and claims waiting for a sandbox slot.",
    registers: [registry],
  });
  registry.registerMetric(new StageDurationHistogram(durations));
  let modelTotals: ReturnType<typeof totalsByModel> = new Map();
  registerModelCounters(registry, () => modelTotals);

  router.get('/', requireRole('viewer'), async (_req, res) => {
    const [fleet] = await Promise.all([fleetSnapshot(client, config), durations.refresh()]);
    for (const status of RUN_STATUSES) runs.set({ status }, fleet.runs[status]);
    const { workflowTasks, activityTasks, claims } = fleet.queueDepth;
    queueDepth.set(workflowTasks + activityTasks + claims);
    modelTotals = totalsByModel(readSpendRows(config.home));
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}
