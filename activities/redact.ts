/** Values shorter than this are not secrets worth the name (and would blank out ordinary text). */
const MIN_SECRET_LENGTH = 4;

/**
 * Removes secret values from streamed text. A value may arrive split over two chunks, so the end of the text that
 * could still be the start of a value is held back until the next chunk (or `flush`).
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
    if (this.longest === 0) return chunk;
    this.pending += chunk;
    let cut = Math.max(0, this.pending.length - (this.longest - 1));
    // Never cut through a whole value that is already there.
    for (let moved = true; moved; ) {
      moved = false;
      for (const { value } of this.values) {
        const at = this.pending.lastIndexOf(value, cut - 1);
        if (at >= 0 && at < cut && at + value.length > cut) {
          cut = at;
          moved = true;
        }
      }
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
    return out;
  }
}
