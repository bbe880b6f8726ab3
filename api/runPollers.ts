import { setTimeout as sleep } from 'node:timers/promises';
import type { RunLog } from '../store/runLog';
import { FINAL_STATUSES, type RunState } from '../contracts/run';

/** What one poll saw of a run: its state and how long its log was. */
export interface RunSnapshot {
  state: RunState;
  logSize: number;
}

const POLL_MS = 300;

type LoadState = (id: string, stopped: AbortSignal) => Promise<RunState>;

export const isFinal = (s: RunState) => FINAL_STATUSES.includes(s.status);

/**
 * One poller per run, shared by every event stream of that run: the first subscriber starts it, the last one gone
 * stops it. A hundred streams of one run cost the workflow one query per poll, not a hundred, also when they all
 * open at once.
 */
export class RunPollers {
  private readonly pollers = new Map<string, RunPoller>();

  /**
   * `loadState` reads a run's state without an access check (each subscriber's access is checked before it
   * subscribes), and gives up when `stopped` aborts: no call is left in flight once the last stream has gone.
   */
  constructor(
    private readonly loadState: LoadState,
    private readonly runLog: RunLog,
    private readonly pollMs = POLL_MS,
  ) {}

  /** Polls of run `id` until `until` aborts. */
  subscribe(id: string, until: AbortSignal): RunSubscription {
    let poller = this.pollers.get(id);
    if (!poller) {
      poller = new RunPoller(id, () => this.pollers.delete(id), this.loadState, this.runLog, this.pollMs);
      this.pollers.set(id, poller);
    }
    poller.subscribers++;
    const own = poller;
    if (until.aborted) own.unsubscribe();
    else until.addEventListener('abort', () => own.unsubscribe(), { once: true });
    let first = true;
    return {
      next: () => {
        const joining = first;
        first = false;
        return own.next(until, joining);
      },
    };
  }

  /** Runs polled now. */
  get active(): number {
    return this.pollers.size;
  }
}

export interface RunSubscription {
  /**
   * The first call: the last poll's snapshot, or the first poll's. After that: the snapshot of the first poll begun
   * after the call, so never older than what the caller saw before. Rejects with the poll's error while no poll has
   * read the run yet; once one has, a failed poll keeps the last state.
   */
  next(): Promise<RunSnapshot>;
}

interface Waiter {
  after: number;
  settle: (outcome: { snapshot: RunSnapshot } | { error: unknown }) => void;
}

class RunPoller {
  subscribers = 0;
  /** Polls begun so far; a waiter takes the first one begun after it started waiting. */
  private begun = 0;
  private waiters: Waiter[] = [];
  private state: RunState | undefined;
  private latest: RunSnapshot | undefined;
  private readonly stop = new AbortController();

  constructor(
    private readonly id: string,
    private readonly forget: () => void,
    private readonly loadState: LoadState,
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

  next(until: AbortSignal, joining: boolean): Promise<RunSnapshot> {
    return new Promise((resolve, reject) => {
      if (until.aborted) return reject(until.reason);
      // A stream joining a polled run starts from the last poll: opening it costs the workflow nothing.
      if (joining && this.latest) return resolve(this.latest);
      const gone = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(until.reason);
      };
      // The listener goes with the answer: a stream waits thousands of times on one signal.
      const waiter: Waiter = {
        after: joining ? 0 : this.begun,
        settle: (outcome) => {
          until.removeEventListener('abort', gone);
          if ('snapshot' in outcome) resolve(outcome.snapshot);
          else reject(outcome.error);
        },
      };
      this.waiters.push(waiter);
      until.addEventListener('abort', gone, { once: true });
    });
  }

  /**
   * One read, cancelled if the poller stops meanwhile. Through a signal of its own: Temporal's client adds a listener
   * per call to the signal it is given and never removes it, which on the poller's would grow with every poll.
   */
  private async read(): Promise<RunState> {
    const cancel = new AbortController();
    const stopped = () => cancel.abort();
    this.stop.signal.addEventListener('abort', stopped, { once: true });
    try {
      return await this.loadState(this.id, cancel.signal);
    } finally {
      this.stop.signal.removeEventListener('abort', stopped);
    }
  }

  private async loop(): Promise<void> {
    let logSize = 0;
    // The first poll at once: the first subscriber (and any opened with it) is waiting for it.
    for (let first = true; !this.stop.signal.aborted; first = false) {
      if (!first && !(await sleep(this.pollMs, true, { signal: this.stop.signal }).catch(() => false))) return;
      const poll = ++this.begun;
      let error: unknown;
      // A final state never changes again; a failed load (no worker answering for a moment) is retried next poll.
      if (!this.state || !isFinal(this.state)) {
        try {
          this.state = await this.read();
        } catch (err) {
          error = err;
        }
      }
      logSize = await this.runLog.size(this.id).catch(() => logSize);
      this.latest = this.state && { state: this.state, logSize };
      const outcome = this.latest ? { snapshot: this.latest } : { error };
      const ready = this.waiters.filter((w) => w.after < poll);
      this.waiters = this.waiters.filter((w) => w.after >= poll);
      ready.forEach((w) => w.settle(outcome));
    }
  }
}
