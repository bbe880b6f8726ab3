/** How many failed authentications an address may make within a window before it is refused. */
export interface AuthLimits {
  maxFailures: number;
  windowMs: number;
  /**
   * Addresses remembered at most; beyond that the oldest are forgotten, so a flood of addresses cannot exhaust memory.
   */
  maxAddresses: number;
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = { maxFailures: 10, windowMs: 5 * 60_000, maxAddresses: 10_000 };

interface Window {
  startedAt: number;
  failures: number;
}

/**
 * Failed bearer tokens per client address, in fixed windows: after `maxFailures` within `windowMs` the address is
 * refused (even with a good token, so guessing gets no answer) until its window ends.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limits: AuthLimits = DEFAULT_AUTH_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `address` may try again, or 0 when it is not limited. */
  retryAfterSeconds(address: string): number {
    const w = this.current(address);
    if (!w || w.failures < this.limits.maxFailures) return 0;
    return Math.max(1, Math.ceil((w.startedAt + this.limits.windowMs - this.now()) / 1000));
  }

  recordFailure(address: string): void {
    let w = this.current(address);
    if (!w) {
      this.evict();
      w = { startedAt: this.now(), failures: 0 };
      this.windows.set(address, w);
    }
    w.failures++;
  }

  /** Addresses remembered now (for tests of the memory bound). */
  get size(): number {
    return this.windows.size;
  }

  private current(address: string): Window | undefined {
    const w = this.windows.get(address);
    if (w && this.now() - w.startedAt >= this.limits.windowMs) {
      this.windows.delete(address);
      return undefined;
    }
    return w;
  }

  /** Make room for one more address: drop ended windows, then the oldest (a Map iterates in insertion order). */
  private evict(): void {
    if (this.windows.size < this.limits.maxAddresses) return;
    const now = this.now();
    for (const [address, w] of this.windows)
      if (now - w.startedAt >= this.limits.windowMs) this.windows.delete(address);
    for (const address of this.windows.keys()) {
      if (this.windows.size < this.limits.maxAddresses) break;
      this.windows.delete(address);
    }
  }
}
