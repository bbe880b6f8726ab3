import { PRIVATE_KEY_BEGIN, PRIVATE_KEY_BLOCK, TOKEN_SHAPES } from './tokenShapes';

/** Values shorter than this are not secrets worth the name (and would blank out ordinary text). */
export const MIN_SECRET_LENGTH = 4;
/** A token still being streamed is held back at most this long; a longer word is no token of a known shape. */
const MAX_TOKEN_LENGTH = 512;
/** A private key block still open is held back at most this long (an RSA 8192 key is about 6.5 KB). */
const MAX_KEY_BLOCK = 16 * 1024;

const SHAPES = TOKEN_SHAPES.map((t) => ({ id: t.id, pattern: new RegExp(t.source, 'g') }));
const PREFIXES = TOKEN_SHAPES.flatMap((t) => t.prefixes);
const TRAILING_WORD = /[A-Za-z0-9_-]+$/;
const LEADING_WORD = /^[A-Za-z0-9_-]+/;
const PARTIAL_BEGIN = /-{1,5}(?:B|BE|BEG|BEGI|BEGIN(?: [A-Z ]*-{0,4})?)?$/;
const PRIVATE_KEY_END = /-----END [A-Z ]*PRIVATE KEY-----/;

/** Could `word`, at the end of the text so far, still become a token of a known shape? */
function mayBeToken(word: string): boolean {
  if (word.length > MAX_TOKEN_LENGTH) return false;
  return PREFIXES.some((p) => word.startsWith(p) || p.startsWith(word));
}

/**
 * Removes secrets from streamed text: the run's secret values (`[redacted:NAME]`), and tokens of well-known shapes
 * and private key blocks whoever's they are (`[redacted:github-token]`). Either may arrive split over chunks, so the
 * end of the text that could still be the start of one is held back until the next chunk (or `flush`).
 */
export class Redactor {
  private readonly values: { name: string; value: string }[];
  private readonly longest: number;
  private pending = '';

  constructor(secrets: Record<string, string>) {
    this.values = Object.entries(secrets)
      .filter(([, value]) => value.length >= MIN_SECRET_LENGTH)
      .map(([name, value]) => ({ name, value }))
      .sort((a, b) => b.value.length - a.value.length);
    this.longest = this.values[0]?.value.length ?? 0;
  }

  /** Feed a chunk; returns what is safe to show now. */
  push(chunk: string): string {
    this.pending += chunk;
    // Each rule only moves the cut earlier, so this ends; at the end neither splits anything.
    let cut = this.pending.length;
    for (let last = -1; last !== cut;) {
      last = cut;
      cut = this.shapeCut(this.valueCut(cut));
    }
    const out = this.pending.slice(0, cut);
    this.pending = this.pending.slice(cut);
    return this.redact(out);
  }

  /** The rest of the text, at the end of the stream. */
  flush(): string {
    const out = this.redact(this.pending);
    this.pending = '';
    return out;
  }

  redact(text: string): string {
    let out = text;
    for (const { name, value } of this.values) out = out.split(value).join(`[redacted:${name}]`);
    out = out.replace(PRIVATE_KEY_BLOCK, '[redacted:private-key]');
    for (const { id, pattern } of SHAPES) out = out.replace(pattern, `[redacted:${id}]`);
    return out;
  }

  /** The latest cut at or before `from` that splits no secret value and leaves whatever could start one pending. */
  private valueCut(from: number): number {
    let cut = Math.min(from, Math.max(0, this.pending.length - (this.longest - 1)));
    // Never cut through a whole value that is already there.
    for (let moved = true; moved;) {
      moved = false;
      for (const { value } of this.values) {
        const at = this.pending.lastIndexOf(value, cut - 1);
        if (at >= 0 && at < cut && at + value.length > cut) {
          cut = at;
          moved = true;
        }
      }
    }
    return cut;
  }

  /** The latest cut at or before `from` that splits no token of a known shape and no private key block. */
  private shapeCut(from: number): number {
    const text = this.pending;
    let cut = from;
    // The word the cut is in (or ends), which may be, or still become, a token.
    const before = TRAILING_WORD.exec(text.slice(0, cut));
    if (before && mayBeToken(before[0] + (LEADING_WORD.exec(text.slice(cut))?.[0] ?? ''))) cut = before.index;
    // A BEGIN line still arriving, or a block whose END has not come yet.
    const partial = PARTIAL_BEGIN.exec(text.slice(0, cut));
    if (partial && !text.slice(0, partial.index).endsWith('KEY')) cut = Math.min(cut, partial.index);
    const begins = [...text.matchAll(new RegExp(PRIVATE_KEY_BEGIN, 'g'))];
    const open = begins.at(-1);
    if (open && !PRIVATE_KEY_END.test(text.slice(open.index)) && text.length - open.index <= MAX_KEY_BLOCK)
      cut = Math.min(cut, open.index);
    // Never cut through a whole block.
    for (const m of text.matchAll(PRIVATE_KEY_BLOCK)) {
      if (m.index < cut && cut < m.index + m[0].length) cut = m.index;
    }
    return cut;
  }
}
