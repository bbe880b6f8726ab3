import { setTimeout as sleep } from 'node:timers/promises';
import type { RunLog } from '../store/runLog';
import { FINAL_STATUSES, type RunState } from '../workflows/types';

/** What one poll saw of a run: its state and how long its log was. */
export interface RunSnapshot {
  state: RunState;
  logSize: number;
}

const POLL_MS = 300;

export const isFinal = (s: RunState) => FINAL_STATUSES.includes(s.status);

/**
 * One poller per run, shared by every event stream of that run: the first subscriber starts it, the last one gone
 * stops it. A hundred streams of one run cost the workflow one query per poll, not a hundred.
 */
export class RunPollers {
  private readonly pollers = new Map<string, RunPoller>();

  /**
   * `loadState` reads a run's state without an access check: each subscriber was checked when it loaded the run
   * itself, before subscribing.
   */
  constructor(private readonly loadState: (id: string) => Promise<RunState>, private readonly runLog: RunLog, private readonly pollMs = POLL_MS) {}

  /** Polls of run `id` until `until` aborts; `seen` is the state the subscriber loaded, the poller's start if it is the first. */
  subscribe(id: string, seen: RunState, until: AbortSignal): RunSubscription {
    let poller = this.pollers.get(id);
    if (!poller) {
      poller = new RunPoller(id, seen, () => this.pollers.delete(id), this.loadState, this.runLog, this.pollMs);
      this.pollers.set(id, poller);
    }
    poller.subscribers++;
    const own = poller;
    if (until.aborted) own.unsubscribe();
    else until.addEventListener('abort', () => own.unsubscribe(), { once: true });
    return { next: () => own.next(until) };
  }

  /** Runs polled now (for tests and metrics). */
  get active(): number {
    return this.pollers.size;
  }
}

export interface RunSubscription {
  /** The snapshot of the first poll that began after this call: never older than what the caller saw before it. */
  next(): Promise<RunSnapshot>;
}

interface Waiter {
  after: number;
  resolve: (s: RunSnapshot) => void;
}

class RunPoller {
  subscribers = 0;
  /** Polls begun so far; a waiter takes the first one begun after it started waiting. */
  private begun = 0;
  private waiters: Waiter[] = [];
  private readonly stop = new AbortController();

  constructor(
    private readonly id: string,
    private state: RunState,
    private readonly forget: () => void,
    private readonly loadState: (id: string) => Promise<RunState>,
    private readonly runLog: RunLog,
    private readonly pollMs: number,
  ) {
    void this.loop();
  }

  unsubscribe(): void {
    if (--this.subscribers > 0) return;
    this.forget();
    this.stop.abort();
  }

  next(until: AbortSignal): Promise<RunSnapshot> {
    return new Promise((resolve, reject) => {
      if (until.aborted) return reject(until.reason);
      const gone = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(until.reason);
      };
      // The listener goes with the answer: a stream waits thousands of times on one signal.
      const waiter: Waiter = {
        after: this.begun,
        resolve: (s) => {
          until.removeEventListener('abort', gone);
          resolve(s);
        },
      };
      this.waiters.push(waiter);
      until.addEventListener('abort', gone, { once: true });
    });
  }

  private async loop(): Promise<void> {
    let logSize = 0;
    while (!this.stop.signal.aborted) {
      try {
        await sleep(this.pollMs, undefined, { signal: this.stop.signal });
      } catch {
        return;
      }
      const poll = ++this.begun;
      // A final state never changes again; a failed load (no worker answering for a moment) is retried next poll.
      if (!isFinal(this.state)) this.state = await this.loadState(this.id).catch(() => this.state);
      logSize = await this.runLog.size(this.id).catch(() => logSize);
      const snapshot = { state: this.state, logSize };
      const ready = this.waiters.filter((w) => w.after < poll);
      this.waiters = this.waiters.filter((w) => w.after >= poll);
      ready.forEach((w) => w.resolve(snapshot));
    }
  }
}
