// The run's Server-Sent Events, read with fetch: EventSource cannot send the Authorization header.
import { ApiFailure, request } from './api.js';
import type { RunView } from './api-types.js';

export interface RunEventHandlers {
  state(run: RunView): void;
  log(text: string): void;
  end(status: string): void;
  /** The stream's health: connected, or why not (retrying unless `final`). */
  connection(connected: boolean, problem?: string, final?: boolean): void;
}

interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

const RETRY_MS = 2000;

/**
 * Follows `GET /v1/runs/:id/events` until the run's `end` event or the signal aborts. After a dropped connection it
 * reconnects with Last-Event-ID, so the server sends only what came after the last event handled here.
 */
export async function followRunEvents(id: string, on: RunEventHandlers, signal: AbortSignal): Promise<void> {
  let lastEventId: string | undefined;
  while (!signal.aborted) {
    try {
      const res = await request('GET', `/v1/runs/${encodeURIComponent(id)}/events`, {
        headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId },
        signal,
      });
      // 204: the server has already sent this client the end.
      if (res.status === 204) return;
      on.connection(true);
      let ended = false;
      for await (const ev of sseEvents(res, signal)) {
        if (ev.event === 'state') on.state(JSON.parse(ev.data) as RunView);
        else if (ev.event === 'log') on.log((JSON.parse(ev.data) as { text: string }).text);
        else if (ev.event === 'end') {
          on.end((JSON.parse(ev.data) as { status: string }).status);
          ended = true;
        }
        if (ev.id !== undefined) lastEventId = ev.id;
      }
      if (ended) return;
      on.connection(false, 'the live stream dropped; reconnecting…');
    } catch (err) {
      if (signal.aborted) return;
      // A 4xx will not get better by retrying (bad token, unknown run).
      if (err instanceof ApiFailure && err.status >= 400 && err.status < 500)
        return on.connection(false, err.message, true);
      on.connection(false, `${(err as Error).message}; reconnecting…`);
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

/** The events of an SSE body, as the spec parses them (comments skipped, multi-line data joined). */
async function* sseEvents(res: Response, signal: AbortSignal): AsyncGenerator<SseEvent> {
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const cancel = () => void reader.cancel().catch(() => undefined);
  signal.addEventListener('abort', cancel);
  try {
    let buffer = '';
    let event: SseEvent = { event: 'message', data: '' };
    let hasData = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (hasData) yield event;
          event = { event: 'message', data: '' };
          hasData = false;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event.event = value;
        else if (field === 'id') event.id = value;
        else if (field === 'data') {
          event.data = hasData ? `${event.data}\n${value}` : value;
          hasData = true;
        }
      }
    }
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}
