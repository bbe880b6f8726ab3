import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 300;

/**
 * One poll of the thing `id`: gives up when `stopped` aborts; `last` is the previous poll's snapshot (a poll may keep
 * what can no longer change). It reads without an access check: each subscriber's access is checked before it
 * subscribes.
 */
export type Poll<S> = (id: string, stopped: AbortSignal, last: S | undefined) => Promise<S>;

/**
 * One poller per polled thing (a run, a campaign), shared by every event stream of it: the first subscriber starts
 * it, the last one gone stops it. A hundred streams of one run cost the workflow one query per poll, not a hundred,
 * also when they all open at once.
 */
export class Pollers<S> {
  private readonly pollers = new Map<string, Poller<S>>();

  /** No poll is left in flight once the last stream of a thing has gone. */
  constructor(
    private readonly poll: Poll<S>,
    private readonly pollMs = POLL_MS,
  ) {}

  /** Polls of `id` until `until` aborts. */
  subscribe(id: string, until: AbortSignal): Subscription<S> {
    let poller = this.pollers.get(id);
    if (!poller) {
      poller = new Poller(id, () => this.pollers.delete(id), this.poll, this.pollMs);
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

  /** Things polled now. */
  get active(): number {
    return this.pollers.size;
  }
}

export interface Subscription<S> {
  /**
   * The first call: the last poll's snapshot, or the first poll's. After that: the snapshot of the first poll begun
   * after the call, so never older than what the caller saw before. Rejects with the poll's error while no poll has
   * succeeded yet; once one has, a failed poll keeps the last snapshot.
   */
  next(): Promise<S>;
}

interface Waiter<S> {
  after: number;
  settle: (outcome: { snapshot: S } | { error: unknown }) => void;
}

class Poller<S> {
  subscribers = 0;
  /** Polls begun so far; a waiter takes the first one begun after it started waiting. */
  private begun = 0;
  private waiters: Waiter<S>[] = [];
  private latest: S | undefined;
  private readonly stop = new AbortController();

  constructor(
    private readonly id: string,
    private readonly forget: () => void,
    private readonly poll: Poll<S>,
    private readonly pollMs: number,
  ) {
    void this.loop();
  }

  unsubscribe(): void {
    if (--this.subscribers > 0) return;
    this.forget();
    this.stop.abort();
  }

  next(until: AbortSignal, joining: boolean): Promise<S> {
    return new Promise((resolve, reject) => {
      if (until.aborted) return reject(until.reason);
      // A stream joining a polled thing starts from the last poll: opening it costs the workflow nothing.
      if (joining && this.latest) return resolve(this.latest);
      const gone = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(until.reason);
      };
      // The listener goes with the answer: a stream waits thousands of times on one signal.
      const waiter: Waiter<S> = {
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
   * One poll, cancelled if the poller stops meanwhile. Through a signal of its own: Temporal's client adds a listener
   * per call to the signal it is given and never removes it, which on the poller's would grow with every poll.
   */
  private async read(): Promise<S> {
    const cancel = new AbortController();
    const stopped = () => cancel.abort();
    this.stop.signal.addEventListener('abort', stopped, { once: true });
    try {
      return await this.poll(this.id, cancel.signal, this.latest);
    } finally {
      this.stop.signal.removeEventListener('abort', stopped);
    }
  }

  private async loop(): Promise<void> {
    // The first poll at once: the first subscriber (and any opened with it) is waiting for it.
    for (let first = true; !this.stop.signal.aborted; first = false) {
      if (!first && !(await sleep(this.pollMs, true, { signal: this.stop.signal }).catch(() => false))) return;
      const poll = ++this.begun;
      let error: unknown;
      // A failed poll (no worker answering for a moment) is retried next time.
      try {
        this.latest = await this.read();
      } catch (err) {
        error = err;
      }
      const outcome = this.latest ? { snapshot: this.latest } : { error };
      const ready = this.waiters.filter((w) => w.after < poll);
      this.waiters = this.waiters.filter((w) => w.after >= poll);
      ready.forEach((w) => w.settle(outcome));
    }
  }
}
