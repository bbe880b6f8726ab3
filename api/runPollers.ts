import type { RunLog } from '../store/runLog';
import { FINAL_STATUSES, type RunState } from '../contracts/run';
import { Pollers, type Subscription } from './pollers';

/** What one poll saw of a run: its state and how long its log was. */
export interface RunSnapshot {
  state: RunState;
  logSize: number;
}

export type RunSubscription = Subscription<RunSnapshot>;

export const isFinal = (s: RunState) => FINAL_STATUSES.includes(s.status);

/** The pollers of runs: each poll reads the run's state (until it is final: it never changes again) and log size. */
export class RunPollers extends Pollers<RunSnapshot> {
  /** `loadState` reads a run's state without an access check, and gives up when `stopped` aborts. */
  constructor(loadState: (id: string, stopped: AbortSignal) => Promise<RunState>, runLog: RunLog, pollMs?: number) {
    super(async (id, stopped, last) => {
      const state = last && isFinal(last.state) ? last.state : await loadState(id, stopped);
      return { state, logSize: await runLog.size(id).catch(() => last?.logSize ?? 0) };
    }, pollMs);
  }
}
