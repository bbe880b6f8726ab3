// What every event stream of the API shares (GET /v1/runs/:id/events, GET /v1/campaigns/:id/events): the client's
// last event id, fingerprints of what was sent, and the stream itself over a poller's snapshots.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Request, Response } from 'express';
import { ApiError } from './errors';
import type { Pollers } from './pollers';

const KEEPALIVE_MS = 15_000;

/** Writes one event (its id spells out where the client is: a resume needs nothing kept on the server). */
export type SendEvent = (id: string, event: string, data: unknown) => Promise<void>;

/**
 * The client's last event id (`Last-Event-ID`, or `?lastEventId=` for clients that cannot set headers) matched to the
 * ids the stream sends (`example` is one), or undefined when it sent none.
 */
export function lastEventIdOf(req: Request, ids: RegExp, example: string): RegExpExecArray | undefined {
  const raw =
    req.get('last-event-id') ?? (typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined);
  if (raw === undefined || raw === '') return undefined;
  const m = ids.exec(raw);
  if (!m)
    throw new ApiError(
      'bad_request',
      `Last-Event-ID must be the id of an event this stream sent (like ${example}), not ${JSON.stringify(raw.slice(0, 80))}`,
    );
  return m;
}

// Every stream of one thing gets the same snapshot object from its poller: hashed once, not once per stream.
const fingerprints = new WeakMap<object, string>();

/** A short hash of what `of` picks out of `snapshot`: what an event id says was sent. */
export function fingerprint<T extends object>(snapshot: T, of: (s: T) => unknown): string {
  let print = fingerprints.get(snapshot);
  if (print === undefined) {
    print = createHash('sha256')
      .update(JSON.stringify(of(snapshot)))
      .digest('hex')
      .slice(0, 12);
    fingerprints.set(snapshot, print);
  }
  return print;
}

/** What one stream does with its poller's snapshots. */
export interface Feed<S> {
  /**
   * With the first snapshot, before any header: false when it answered without a stream (a 204 for a client that has
   * seen the end); it may throw the client's 4xx.
   */
  opening(first: S): Promise<boolean>;
  /** Sends what `snapshot` has new (`round` 0: the first one's); true once the stream has ended. */
  round(snapshot: S, send: SendEvent, round: number): Promise<boolean>;
}

/**
 * An event stream of `id` from `pollers` (shared with its other streams): its first poll (a failed one is the client's
 * 503, as the GET of the thing would be), then 200 and the events, each poll's, with a keepalive comment meanwhile,
 * until the feed ends it or the client goes.
 */
export async function streamPolls<S>(res: Response, pollers: Pollers<S>, id: string, feed: Feed<S>): Promise<void> {
  const closed = new AbortController();
  res.on('close', () => closed.abort());
  try {
    const polls = pollers.subscribe(id, closed.signal);
    const first = await polls.next();
    if (!(await feed.opening(first))) return;
    // setHeader, not res.set: express would add a charset to the type (SSE is UTF-8 by definition).
    res.status(200).setHeader('Content-Type', 'text/event-stream');
    res.set({ 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no', Connection: 'keep-alive' });
    res.flushHeaders();
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    // A client gone fails the send: the feed stops there.
    const send: SendEvent = async (eventId, event, data) => {
      closed.signal.throwIfAborted();
      if (res.write(`id: ${eventId}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) return;
      await once(res, 'drain', { signal: closed.signal });
    };
    try {
      let snapshot = first;
      for (let round = 0; !closed.signal.aborted; round++) {
        if (await feed.round(snapshot, send, round)) {
          res.end();
          return;
        }
        snapshot = await polls.next();
      }
    } catch (err) {
      // The client went away (an aborted wait); anything else ends the stream, as the headers are gone already.
      if (!closed.signal.aborted) res.destroy(err as Error);
    } finally {
      clearInterval(keepalive);
    }
  } finally {
    // Leaves the poller now, not when the socket closes (an ended stream's connection may be kept alive).
    closed.abort();
  }
}
