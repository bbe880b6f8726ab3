import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Request, Response } from 'express';
import type { RunLog } from '../store/runLog';
import type { RunState } from '../contracts/run';
import { ApiError } from './errors';
import { isFinal, type RunPollers, type RunSnapshot, type RunSubscription } from './runPollers';

export interface EventsDeps {
  id: string;
  /** The 404 or 403 the client's token gets for the run, if any; its state is the poller's to read. */
  authorize: (id: string) => Promise<void>;
  runLog: RunLog;
  pollers: RunPollers;
}

const KEEPALIVE_MS = 15_000;
const MAX_LOG_EVENT_BYTES = 64 * 1024;

/**
 * Where a client is in a run's stream. Every event's id spells it out, so a resume needs nothing kept on the
 * server (and survives an API restart): `<state events so far>-<fingerprint of the last state sent>-<log bytes
 * sent>`, with `-end` on the id of the `end` event.
 */
interface Cursor {
  seq: number;
  fingerprint: string;
  offset: number;
  ended: boolean;
}

const EVENT_ID = /^(\d{1,9})-([0-9a-f]{12})-(\d{1,15})(-end)?$/;
const START: Cursor = { seq: 0, fingerprint: '0'.repeat(12), offset: 0, ended: false };

function formatId(c: Cursor): string {
  return `${c.seq}-${c.fingerprint}-${c.offset}${c.ended ? '-end' : ''}`;
}

/** The client's last event id (`Last-Event-ID`, or `?lastEventId=` for clients that cannot set headers). */
function cursorOf(req: Request): Cursor {
  const raw =
    req.get('last-event-id') ?? (typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined);
  if (raw === undefined || raw === '') return START;
  const m = EVENT_ID.exec(raw);
  if (!m)
    throw new ApiError(
      'bad_request',
      `Last-Event-ID must be the id of an event this stream sent (like 3-0123456789ab-2048), not ${JSON.stringify(raw.slice(0, 80))}`,
    );
  return { seq: Number(m[1]), fingerprint: m[2], offset: Number(m[3]), ended: m[4] !== undefined };
}

// Every stream of a run gets the same state object from its poller: hashed once, not once per stream.
const fingerprints = new WeakMap<RunState, string>();

/** What a `state` event is sent for: a change of status, stage, iteration or the stage list (timings included). */
function fingerprint(s: RunState): string {
  let print = fingerprints.get(s);
  if (print === undefined) {
    print = createHash('sha256')
      .update(JSON.stringify([s.status, s.stage, s.iteration, s.stages]))
      .digest('hex')
      .slice(0, 12);
    fingerprints.set(s, print);
  }
  return print;
}

/**
 * GET /v1/runs/:id/events: the run's state and log as Server-Sent Events, from the client's last event on; `end` once
 * the run has ended and its whole log was sent. The run's poller (shared with its other streams) reads the state.
 */
export async function streamEvents(req: Request, res: Response, deps: EventsDeps): Promise<void> {
  const cursor = cursorOf(req);
  await deps.authorize(deps.id);
  const closed = new AbortController();
  res.on('close', () => closed.abort());
  try {
    const polls = deps.pollers.subscribe(deps.id, closed.signal);
    // A failed first read (no worker answering) is the client's 503, as GET /v1/runs/:id's would be.
    const first = await polls.next();
    // The log only grows, so an offset past its end was never sent for this run.
    if (cursor.offset > (await deps.runLog.size(deps.id)))
      throw new ApiError(
        'bad_request',
        `Last-Event-ID is past the end of run ${deps.id}'s log: not an event of this run`,
      );
    // 204 tells a client (EventSource included) to stop reconnecting: it has seen the end.
    if (cursor.ended) {
      res.status(204).end();
      return;
    }
    await stream(res, { ...deps, cursor, first, polls, closed: closed.signal });
  } finally {
    // Leaves the run's poller now, not when the socket closes (an ended stream's connection may be kept alive).
    closed.abort();
  }
}

interface Stream {
  id: string;
  runLog: RunLog;
  cursor: Cursor;
  first: RunSnapshot;
  polls: RunSubscription;
  closed: AbortSignal;
}

/** The events themselves, after the headers: a state when it changed, the log's new bytes, on every poll. */
async function stream(res: Response, { id, runLog, polls, closed, first, ...from }: Stream): Promise<void> {
  let { cursor } = from;
  // setHeader, not res.set: express would add a charset to the type (SSE is UTF-8 by definition).
  res.status(200).setHeader('Content-Type', 'text/event-stream');
  res.set({ 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no', Connection: 'keep-alive' });
  res.flushHeaders();
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);

  const send = async (event: string, data: unknown) => {
    if (res.write(`id: ${formatId(cursor)}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) return;
    await once(res, 'drain', { signal: closed });
  };
  /**
   * Sends the log from the cursor to its end (as long as the poll saw it, or longer); returns whether there was any.
   */
  const sendLog = async (size: number) => {
    let sent = false;
    while (cursor.offset < size && !closed.aborted) {
      const { text, next } = await runLog.read(id, cursor.offset, MAX_LOG_EVENT_BYTES);
      if (!text) return sent;
      cursor = { ...cursor, offset: next };
      await send('log', { text });
      sent = true;
    }
    return sent;
  };

  try {
    // The first round sends the whole log as it is now; the next ones what their poll saw.
    let { state, logSize } = { ...first, logSize: Infinity };
    for (let round = 0; !closed.aborted; round++) {
      const print = fingerprint(state);
      if (print !== cursor.fingerprint) {
        cursor = { ...cursor, seq: cursor.seq + 1, fingerprint: print };
        await send('state', state);
      }
      // Once the run has ended, its log is complete when a poll finds nothing new (a cancelled stage may still be
      // flushing).
      if (!(await sendLog(logSize)) && isFinal(state) && round > 0) {
        cursor = { ...cursor, ended: true };
        await send('end', { status: state.status });
        res.end();
        return;
      }
      ({ state, logSize } = await polls.next());
    }
  } catch (err) {
    // The client went away (an aborted wait); anything else ends the stream, as the headers are gone already.
    if (!closed.aborted) res.destroy(err as Error);
  } finally {
    clearInterval(keepalive);
  }
}
