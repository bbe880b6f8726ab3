import {
  Connection,
  defaultGrpcRetryOptions,
  makeGrpcRetryInterceptor,
  type ConnectionOptions,
} from '@temporalio/client';

/**
 * A client connection whose retries end before it closes. The SDK's retry interceptor waits out its backoff with a
 * bare setTimeout that `close()` leaves armed; one that fires after it throws "Channel has been shut down" from the
 * timer, an uncaught exception that kills the process (seen in CI; vinceblank/agent-tempo#624 tells the same story).
 * So a closing connection starts no new retry, and closes only once every retry already waiting has been made.
 */
export class TemporalConnection extends Connection {
  /** Whether it is closing, and when the last retry already scheduled is due. */
  private retries = { closing: false, lastDue: 0 };

  static async open(options: Omit<ConnectionOptions, 'interceptors'>): Promise<TemporalConnection> {
    const defaults = defaultGrpcRetryOptions();
    const retries = { closing: false, lastDue: 0 };
    const interceptor = makeGrpcRetryInterceptor({
      retryableDecider: (attempt, status) => !retries.closing && defaults.retryableDecider(attempt, status),
      delayFunction: (attempt, status) => {
        const delay = defaults.delayFunction(attempt, status);
        retries.lastDue = Math.max(retries.lastDue, Date.now() + delay);
        return delay;
      },
    });
    const connection = this.lazy({ ...options, interceptors: [interceptor] }) as TemporalConnection;
    connection.retries = retries;
    await connection.ensureConnected();
    return connection;
  }

  override async close(): Promise<void> {
    this.retries.closing = true;
    const wait = this.retries.lastDue - Date.now();
    // A little past the due time: the timer's callback has run, and its call is on the open channel.
    if (wait > -50) await new Promise((r) => setTimeout(r, wait + 50));
    await super.close();
  }
}
