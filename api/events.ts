import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Request, Response } from 'express';
import type { RunLog } from '../store/runLog';
import type { RunState } from '../workflows/types';
import { ApiError } from './errors';
import { isFinal, type RunPollers } from './runPollers';

export interface EventsDeps {
  id: string;
  /** The run's state, as the client's token may see it (its access checked). */
  loadRun: (id: string) => Promise<RunState>;
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
  const raw = req.get('last-event-id') ?? (typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined);
  if (raw === undefined || raw === '') return START;
  const m = EVENT_ID.exec(raw);
  if (!m) throw new ApiError('bad_request', `Last-Event-ID must be the id of an event this stream sent (like 3-0123456789ab-2048), not ${JSON.stringify(raw.slice(0, 80))}`);
  return { seq: Number(m[1]), fingerprint: m[2], offset: Number(m[3]), ended: m[4] !== undefined };
}

/** What a `state` event is sent for: a change of status, stage, iteration or the stage list (timings included). */
function fingerprint(s: RunState): string {
  return createHash('sha256').update(JSON.stringify([s.status, s.stage, s.iteration, s.stages])).digest('hex').slice(0, 12);
}

/**
 * GET /v1/runs/:id/events: the run's state and log as Server-Sent Events, from the client's last event on; `end` once
 * the run has ended and its whole log was sent. The run's poller (shared with its other streams) says when to look.
 */
export async function streamEvents(req: Request, res: Response, deps: EventsDeps): Promise<void> {
  let cursor = cursorOf(req);
  let state = await deps.loadRun(deps.id);
  // The log only grows, so an offset past its end was never sent for this run.
  if (cursor.offset > (await deps.runLog.size(deps.id))) throw new ApiError('bad_request', `Last-Event-ID is past the end of run ${deps.id}'s log: not an event of this run`);
  // 204 tells a client (EventSource included) to stop reconnecting: it has seen the end.
  if (cursor.ended) {
    res.status(204).end();
    return;
  }

  const closed = new AbortController();
  res.on('close', () => closed.abort());
  // setHeader, not res.set: express would add a charset to the type (SSE is UTF-8 by definition).
  res.status(200).setHeader('Content-Type', 'text/event-stream');
  res.set({ 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no', Connection: 'keep-alive' });
  res.flushHeaders();
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);

  const send = async (event: string, data: unknown) => {
    if (res.write(`id: ${formatId(cursor)}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) return;
    await once(res, 'drain', { signal: closed.signal });
  };
  /** Sends the log from the cursor to its current end (`size`, when a poll knows it); returns whether there was any. */
  const sendLog = async (size: number) => {
    let sent = false;
    if (cursor.offset >= size) return sent;
    while (!closed.signal.aborted) {
      const { text, next } = await deps.runLog.read(deps.id, cursor.offset, MAX_LOG_EVENT_BYTES);
      if (!text) return sent;
      cursor = { ...cursor, offset: next };
      await send('log', { text });
      sent = true;
    }
    return sent;
  };

  const polls = deps.pollers.subscribe(deps.id, state, closed.signal);
  let logSize = Infinity;
  try {
    for (let first = true; !closed.signal.aborted; first = false) {
      const print = fingerprint(state);
      if (print !== cursor.fingerprint) {
        cursor = { ...cursor, seq: cursor.seq + 1, fingerprint: print };
        await send('state', state);
      }
      // Once the run has ended, its log is complete when a poll finds nothing new (a cancelled stage may still be flushing).
      if (!(await sendLog(logSize)) && isFinal(state) && !first) {
        cursor = { ...cursor, ended: true };
        await send('end', { status: state.status });
        res.end();
        return;
      }
      ({ state, logSize } = await polls.next());
    }
  } catch (err) {
    // The client went away (an aborted wait); anything else ends the stream, as the headers are gone already.
    if (!closed.signal.aborted) res.destroy(err as Error);
  } finally {
    clearInterval(keepalive);
    // Leaves the run's poller now, not when the socket closes (an ended stream's connection may be kept alive).
    closed.abort();
  }
}
