/** One Server-Sent Event as a client sees it: the event type (default "message"), its data and the last id set. */
export interface SseEvent {
  event: string;
  data: string;
  id: string;
}

export interface SseStream {
  status: number;
  headers: Headers;
  /** The body as text, when the server answered with something other than a stream (an error). */
  errorText?: string;
  /** The next event; undefined once the server ended the stream. */
  next(timeoutMs?: number): Promise<SseEvent | undefined>;
  /** Comment lines (": keepalive") received so far. */
  comments: string[];
  /** The next comment line; undefined once the server ended the stream. Events meanwhile are kept for `next`. */
  nextComment(timeoutMs?: number): Promise<string | undefined>;
  /** Disconnect, as a client going away mid-stream does. */
  close(): void;
}

/**
 * A client of an SSE endpoint over fetch and a streaming body reader, as the web page reads it (EventSource cannot
 * send an Authorization header). Parses the wire format per the HTML standard: lines end in CRLF, LF or CR; a blank
 * line dispatches; `:` starts a comment; one space after the field's colon is dropped; data lines join with \n.
 */
export async function openSse(url: string, opts: { token?: string; lastEventId?: string } = {}): Promise<SseStream> {
  const abort = new AbortController();
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId;
  const res = await fetch(url, { headers, signal: abort.signal });
  const comments: string[] = [];
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
    const errorText = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      errorText,
      comments,
      next: async () => undefined,
      nextComment: async () => undefined,
      close: () => abort.abort(),
    };
  }

  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const ready: SseEvent[] = [];
  let buffered = '';
  let done = false;
  let lastId = '';
  let event = '';
  let data: string[] = [];
  let pending: ReturnType<typeof reader.read> | undefined;

  const line = (text: string) => {
    if (text === '') {
      if (data.length) ready.push({ event: event || 'message', data: data.join('\n'), id: lastId });
      event = '';
      data = [];
      return;
    }
    if (text.startsWith(':')) {
      comments.push(text.slice(1).trim());
      return;
    }
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) lastId = value;
  };

  /** Reads chunks until `satisfied()` or the end of the stream. */
  const pump = async (timeoutMs: number, satisfied: () => boolean, what: string) => {
    const deadline = Date.now() + timeoutMs;
    while (!satisfied() && !done) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no SSE ${what} within ${timeoutMs} ms from ${url}`)),
          Math.max(0, deadline - Date.now()),
        );
      });
      // A read outlives a timeout: the next call waits for the same one, so no chunk is lost.
      pending ??= reader.read();
      const chunk = await Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
      pending = undefined;
      if (chunk.done) {
        done = true;
        break;
      }
      buffered += chunk.value;
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk to decide.
      const lines = buffered.split(/\r\n|\r(?!$)|\n/);
      buffered = lines.pop()!;
      lines.forEach(line);
    }
  };

  const next = async (timeoutMs = 60_000) => {
    await pump(timeoutMs, () => ready.length > 0, 'event');
    return ready.shift();
  };
  const nextComment = async (timeoutMs = 60_000) => {
    const seen = comments.length;
    await pump(timeoutMs, () => comments.length > seen, 'comment');
    return comments[seen];
  };

  return { status: res.status, headers: res.headers, comments, next, nextComment, close: () => abort.abort() };
}

/** Reads events until one satisfies `until` (returned last) or the stream ends. */
export async function readUntil(
  stream: SseStream,
  until: (e: SseEvent) => boolean,
  timeoutMs = 60_000,
): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = await stream.next(Math.max(1, deadline - Date.now()));
    if (!e) return events;
    events.push(e);
    if (until(e)) return events;
  }
}
