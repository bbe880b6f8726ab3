import { ApplicationFailure, WorkflowFailedError, type Client } from '@temporalio/client';
import type { Config } from '../config';
import type { specRun } from '../workflows/specRun';
import { SPEC_RUN_WORKFLOW } from '../workflows/names';
import type { RunState, StageName } from '../contracts/run';

/** Bucket bounds in seconds: from a sub-second scope check to an approval that waited a day. */
export const STAGE_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400];

export interface StageHistogram {
  /** Observations ≤ each bound of STAGE_BUCKETS, cumulative. */
  buckets: number[];
  sum: number;
  count: number;
}

/** Visibility may list a run a little after it closed: look this far behind the last close time read. */
const VISIBILITY_LAG_MS = 5 * 60_000;
/** Results read per scrape; a server with a long history catches up over a few scrapes. */
const MAX_READS = 200;
const READ_CONCURRENCY = 8;

/**
 * Stage durations of finished runs, as the workflow recorded them (`stages[].durationMs`), read once per run from
 * its result in Temporal's history: no worker needed (`serve` alone has the same numbers as `up`), and every API
 * process counts alike. Runs that ended by a cancel or a terminate carry no result and are not counted.
 * Memory: a histogram per stage and the ids of runs that closed within VISIBILITY_LAG_MS of the newest one read.
 */
export class StageDurations {
  private readonly histograms = new Map<StageName, StageHistogram>();
  /** Close time (ms) up to which every finished run has been read. */
  private watermark = 0;
  /** Runs already read whose close time is within the lag window of the watermark: id → close time. */
  private readonly recent = new Map<string, number>();
  private refreshing?: Promise<void>;

  constructor(
    private readonly client: Client,
    private readonly config: Config,
  ) {}

  /** Read the runs that finished since the last call; concurrent callers share one pass. */
  refresh(): Promise<void> {
    this.refreshing ??= this.readNewRuns().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  snapshot(): ReadonlyMap<StageName, StageHistogram> {
    return this.histograms;
  }

  private async readNewRuns(): Promise<void> {
    const since = new Date(Math.max(0, this.watermark - VISIBILITY_LAG_MS)).toISOString();
    const query = `WorkflowType = '${SPEC_RUN_WORKFLOW}' AND TaskQueue = '${this.config.taskQueue}' AND ExecutionStatus IN ('Completed', 'Failed') AND CloseTime >= '${since}'`;
    const closed: { id: string; closedAt: number }[] = [];
    for await (const wf of this.client.workflow.list({ query })) {
      if (wf.closeTime && !this.recent.has(wf.workflowId))
        closed.push({ id: wf.workflowId, closedAt: wf.closeTime.getTime() });
    }
    closed.sort((a, b) => a.closedAt - b.closedAt);
    const batch = closed.slice(0, MAX_READS);
    // Read the whole batch before counting any of it: a failed read fails the scrape, and the next one starts over.
    const states: (RunState | undefined)[] = [];
    for (let i = 0; i < batch.length; i += READ_CONCURRENCY) {
      states.push(...(await Promise.all(batch.slice(i, i + READ_CONCURRENCY).map((run) => this.finalState(run.id)))));
    }
    for (const state of states) if (state) this.observe(state);
    for (const run of batch) {
      this.recent.set(run.id, run.closedAt);
      this.watermark = Math.max(this.watermark, run.closedAt);
    }
    for (const [id, closedAt] of this.recent) if (closedAt < this.watermark - VISIBILITY_LAG_MS) this.recent.delete(id);
  }

  /** The run's final state: a finished run's result, or the details of the failure it ended with. */
  private async finalState(id: string): Promise<RunState | undefined> {
    try {
      return await this.client.workflow.getHandle<typeof specRun>(id).result();
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      return (err.cause instanceof ApplicationFailure ? err.cause.details?.[0] : undefined) as RunState | undefined;
    }
  }

  private observe(state: RunState): void {
    for (const { stage, durationMs } of state.stages) {
      if (durationMs === undefined) continue;
      const seconds = durationMs / 1000;
      let h = this.histograms.get(stage);
      if (!h) this.histograms.set(stage, (h = { buckets: STAGE_BUCKETS.map(() => 0), sum: 0, count: 0 }));
      STAGE_BUCKETS.forEach((bound, i) => {
        if (seconds <= bound) h.buckets[i]++;
      });
      h.sum += seconds;
      h.count++;
    }
  }
}
