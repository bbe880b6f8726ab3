/**
 * This worker's sandbox slots. A run holds one from its claim until its teardown, so the capacity counts workspaces
 * held (an agent waiting on its model holds one too), not stage executions. A claim that is never followed by a
 * provision (its workflow was cancelled in between) expires.
 */
export class SandboxSlots {
  private readonly held = new Map<string, { since: number; provisioned: boolean }>();
  /** Claims held while full, hoping a slot frees up before they are handed back. */
  private readonly waitingRuns = new Set<string>();

  constructor(
    readonly capacity: number,
    private readonly claimExpiryMs: number,
  ) {}

  get load(): number {
    this.expire();
    return this.held.size;
  }

  get waiting(): number {
    return this.waitingRuns.size;
  }

  /** Take a slot for the run (again, if it has one); false when all are held. */
  tryTake(runId: string): boolean {
    this.expire();
    if (!this.held.has(runId) && this.held.size >= this.capacity) {
      this.waitingRuns.add(runId);
      return false;
    }
    this.waitingRuns.delete(runId);
    this.held.set(runId, { since: Date.now(), provisioned: this.held.get(runId)?.provisioned ?? false });
    return true;
  }

  /** A run's workspace exists here: its slot no longer expires. */
  provisioned(runId: string): void {
    this.held.set(runId, { since: Date.now(), provisioned: true });
  }

  release(runId: string): void {
    this.held.delete(runId);
    this.waitingRuns.delete(runId);
  }

  /** A claim that gave up (cancelled, or its worker's task timed out). */
  stopWaiting(runId: string): void {
    this.waitingRuns.delete(runId);
  }

  private expire(): void {
    const now = Date.now();
    for (const [runId, slot] of this.held)
      if (!slot.provisioned && now - slot.since > this.claimExpiryMs) this.held.delete(runId);
  }

  /** Resolves once a slot is free (polled: slots free up on teardowns and expiries); rejects when `signal` aborts. */
  async whenFree(signal: AbortSignal): Promise<void> {
    while (this.load >= this.capacity) {
      signal.throwIfAborted();
      await new Promise((resolve) => setTimeout(resolve, FREE_POLL_MS));
    }
    signal.throwIfAborted();
  }
}

/** How often a worker waiting to claim looks for a free slot. */
const FREE_POLL_MS = 200;
