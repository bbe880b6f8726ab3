import { ApiError } from './errors';

/** How many event streams may be open at once: per token, and on the whole API. */
export interface StreamLimits {
  perToken: number;
  total: number;
}

/**
 * Open event streams counted per token and in all. A stream holds a connection, a keepalive timer and a share of its
 * run's poller for as long as the client likes, so one token could otherwise hold them all.
 */
export class StreamSlots {
  private readonly byToken = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: StreamLimits) {}

  /**
   * A slot for one more stream of `token`, or a 429 naming the cap it would pass; the function returned frees it
   * (once).
   */
  take(token: string): () => void {
    const mine = this.byToken.get(token) ?? 0;
    if (mine >= this.limits.perToken) {
      throw new ApiError(
        'too_many_requests',
        `too many event streams for this token: at most ${this.limits.perToken} open at once (NIGHTSHIFT_STREAMS_PER_TOKEN); close one first`,
      );
    }
    if (this.total >= this.limits.total) {
      throw new ApiError(
        'too_many_requests',
        `too many event streams on this server: at most ${this.limits.total} open at once (NIGHTSHIFT_STREAMS_TOTAL); try again later`,
      );
    }
    this.byToken.set(token, mine + 1);
    this.total++;
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      this.total--;
      const left = (this.byToken.get(token) ?? 1) - 1;
      if (left > 0) this.byToken.set(token, left);
      else this.byToken.delete(token);
    };
  }

  /** Serves `stream` in a slot of `token`'s (taken before anything is loaded: a refused one costs nothing). */
  async serve(token: string, stream: () => Promise<void>): Promise<void> {
    const free = this.take(token);
    try {
      await stream();
    } finally {
      free();
    }
  }

  /** Streams open now, for `token` or in all. */
  open(token?: string): number {
    return token === undefined ? this.total : (this.byToken.get(token) ?? 0);
  }
}
