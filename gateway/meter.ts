// The gateway's token meter: reads usage (and the answering model) out of a vendor's JSON or server-sent events as
// they pass, without holding up or altering a byte of them.
import { StringDecoder } from 'node:string_decoder';

// A response body (or one SSE event) larger than this is passed through but not metered.
const MAX_METERED_BYTES = 32 * 1024 * 1024;

export interface Tokens {
  input: number;
  output: number;
}

/**
 * Tokens in a usage object of either vendor. Anthropic's cache reads and writes are input; OpenAI's
 * `input_tokens_details.cached_tokens` is already part of `input_tokens`, so it is not added.
 */
function tokensOf(usage: unknown): Tokens | undefined {
  if (!usage || typeof usage !== 'object') return undefined;
  const u = usage as Record<string, unknown>;
  const n = (key: string): number => {
    const v = u[key];
    return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
  };
  return {
    input: n('input_tokens') + n('cache_creation_input_tokens') + n('cache_read_input_tokens') + n('prompt_tokens'),
    output: n('output_tokens') + n('completion_tokens'),
  };
}

/**
 * The usage object in a JSON body or SSE event: top-level `usage` (Anthropic/OpenAI JSON, Anthropic `message_delta`,
 * chat-completion chunks), `message.usage` (Anthropic `message_start`), `response.usage` (OpenAI `response.completed`).
 */
function usageIn(body: unknown): Tokens | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const b = body as { usage?: unknown; message?: { usage?: unknown }; response?: { usage?: unknown } };
  return tokensOf(b.usage ?? b.message?.usage ?? b.response?.usage);
}

/** The model a response says it came from (`model`, `message.model`, `response.model`), when it is a plain id. */
function modelIn(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const b = body as { model?: unknown; message?: { model?: unknown }; response?: { model?: unknown } };
  const model = b.model ?? b.message?.model ?? b.response?.model;
  return typeof model === 'string' && /^[\w.:@/-]{1,100}$/.test(model) ? model : undefined;
}

/**
 * Meters one response as it streams through. Usage numbers within a response are cumulative (Anthropic's
 * `message_delta.output_tokens` repeats and grows), so the response's tokens are the maximum seen, and each increase
 * is handed to `onIncrease` at once so concurrent requests see it.
 */
export class ResponseMeter {
  readonly seen: Tokens = { input: 0, output: 0 };
  private readonly decoder = new StringDecoder('utf8');
  private readonly jsonChunks: Buffer[] = [];
  private bytes = 0; // JSON: body so far; SSE: current event so far
  private line = '';
  private skippingLine = false; // inside an over-long line, which is passed through but not metered
  private eventData: string[] = [];

  constructor(
    private readonly kind: 'sse' | 'json' | 'other',
    private readonly onIncrease: (d: Tokens) => void,
    private readonly onModel: (model: string) => void,
  ) {}

  feed(chunk: Buffer): void {
    if (this.kind === 'json') {
      this.bytes += chunk.length;
      if (this.bytes <= MAX_METERED_BYTES) this.jsonChunks.push(chunk);
    } else if (this.kind === 'sse') {
      this.sse(this.decoder.write(chunk));
    }
  }

  end(): void {
    if (this.kind === 'json' && this.bytes <= MAX_METERED_BYTES && this.jsonChunks.length) {
      this.observe(Buffer.concat(this.jsonChunks).toString('utf8'));
    } else if (this.kind === 'sse') {
      this.sse(`${this.decoder.end()}\n\n`); // a stream may end without the final blank line
    }
  }

  /** Incremental SSE: lines end in \n (a preceding \r is dropped); a blank line ends an event. Only `data:` matters. */
  private sse(text: string): void {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      let line = this.line + text.slice(start, nl);
      this.line = '';
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (this.skippingLine) {
        this.skippingLine = false;
        this.bytes = MAX_METERED_BYTES + 1; // so the rest of its event is not metered either
      } else if (line === '') {
        if (this.eventData.length && this.bytes <= MAX_METERED_BYTES) this.observe(this.eventData.join('\n'));
        this.eventData = [];
        this.bytes = 0;
      } else if (line.startsWith('data:')) {
        this.bytes += line.length;
        if (this.bytes <= MAX_METERED_BYTES) this.eventData.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      }
    }
    const rest = text.slice(start);
    if (this.skippingLine) return;
    if (this.line.length + rest.length <= MAX_METERED_BYTES) {
      this.line += rest;
    } else {
      this.line = '';
      this.skippingLine = true;
    }
  }

  private observe(data: string): void {
    if (!data.includes('"usage"')) return; // most events are content deltas: don't parse them
    let tokens: Tokens | undefined;
    try {
      const body: unknown = JSON.parse(data);
      const model = modelIn(body);
      if (model) this.onModel(model);
      tokens = usageIn(body);
    } catch {
      return;
    }
    if (!tokens) return;
    const increase = {
      input: Math.max(0, tokens.input - this.seen.input),
      output: Math.max(0, tokens.output - this.seen.output),
    };
    this.seen.input += increase.input;
    this.seen.output += increase.output;
    if (increase.input || increase.output) this.onIncrease(increase);
  }
}
