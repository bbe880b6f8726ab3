import type { Request, Response } from 'express';
import type { RunLog } from '../store/runLog';
import type { RunState } from '../contracts/run';
import { ApiError } from './errors';
import { isFinal, type RunPollers, type RunSnapshot } from './runPollers';
import { fingerprint, lastEventIdOf, streamPolls, type Feed } from './sse';

export interface EventsDeps {
  id: string;
  /** The 404 or 403 the client's token gets for the run, if any; its state is the poller's to read. */
  authorize: (id: string) => Promise<void>;
  runLog: RunLog;
  pollers: RunPollers;
}

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

function cursorOf(req: Request): Cursor {
  const m = lastEventIdOf(req, EVENT_ID, '3-0123456789ab-2048');
  return m ? { seq: Number(m[1]), fingerprint: m[2], offset: Number(m[3]), ended: m[4] !== undefined } : START;
}

/** What a `state` event is sent for: a change of status, stage, iteration or the stage list (timings included). */
const stateFingerprint = (s: RunState) => fingerprint(s, () => [s.status, s.stage, s.iteration, s.stages]);

/**
 * GET /v1/runs/:id/events: the run's state and log as Server-Sent Events, from the client's last event on; `end` once
 * the run has ended and its whole log was sent. The run's poller (shared with its other streams) reads the state.
 */
export async function streamEvents(req: Request, res: Response, deps: EventsDeps): Promise<void> {
  const from = cursorOf(req);
  await deps.authorize(deps.id);
  await streamPolls(res, deps.pollers, deps.id, runFeed(res, deps, from));
}

/** The events themselves: a state when it changed, the log's new bytes, on every poll. */
function runFeed(res: Response, { id, runLog }: EventsDeps, from: Cursor): Feed<RunSnapshot> {
  let cursor = from;
  return {
    async opening() {
      // The log only grows, so an offset past its end was never sent for this run.
      if (cursor.offset > (await runLog.size(id)))
        throw new ApiError('bad_request', `Last-Event-ID is past the end of run ${id}'s log: not an event of this run`);
      // 204 tells a client (EventSource included) to stop reconnecting: it has seen the end.
      if (!cursor.ended) return true;
      res.status(204).end();
      return false;
    },
    async round(snapshot, send, round) {
      const { state } = snapshot;
      // The first round sends the whole log as it is now; the next ones what their poll saw.
      const logSize = round === 0 ? Infinity : snapshot.logSize;
      const print = stateFingerprint(state);
      if (print !== cursor.fingerprint) {
        cursor = { ...cursor, seq: cursor.seq + 1, fingerprint: print };
        await send(formatId(cursor), 'state', state);
      }
      // Sends the log from the cursor to its end (as long as the poll saw it, or longer).
      let sentLog = false;
      while (cursor.offset < logSize) {
        const { text, next } = await runLog.read(id, cursor.offset, MAX_LOG_EVENT_BYTES);
        if (!text) break;
        cursor = { ...cursor, offset: next };
        await send(formatId(cursor), 'log', { text });
        sentLog = true;
      }
      // Once the run has ended, its log is complete when a poll finds nothing new (a cancelled stage may still be
      // flushing).
      if (sentLog || !isFinal(state) || round === 0) return false;
      cursor = { ...cursor, ended: true };
      await send(formatId(cursor), 'end', { status: state.status });
      return true;
    },
  };
}
