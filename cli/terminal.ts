import { StringDecoder } from 'node:string_decoder';

/**
 * Where a `TerminalFilter` is: in plain text, just after an ESC, inside a control sequence (CSI), inside a control
 * string (OSC, DCS, SOS, PM, APC: up to its terminator), just after an ESC inside such a string, or among an escape
 * sequence's intermediate bytes.
 */
type State = 'text' | 'esc' | 'csi' | 'string' | 'stringEsc' | 'intermediate';

const ESC = 0x1b;
const BEL = 0x07;
// The 8-bit forms: CSI, and the introducers of control strings (DCS, SOS, OSC, PM, APC) and their terminator ST.
const C1_CSI = 0x9b;
const C1_STRINGS = new Set([0x90, 0x98, 0x9d, 0x9e, 0x9f]);
const C1_ST = 0x9c;
// After ESC: `[` starts a CSI; `]` `P` `X` `^` `_` a control string.
const ESC_STRINGS = new Set([...']PX^_'].map((c) => c.charCodeAt(0)));
/** Anything the filter would act on; text without it passes as it is. */
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

/**
 * Strips terminal control sequences from text on its way to a terminal (or a pipe that ends in one): everything an
 * agent, a spec or a diff could use to rewrite the screen, set the title, write the clipboard (OSC 52) or answer for
 * the user. Kept: `\n`, `\t` and every printable character, any language. Dropped: ESC sequences (CSI, OSC, DCS,
 * SOS, PM, APC, two-byte `ESC X`), C0 controls (`\r`, `\b`, BEL…), DEL and C1 controls (U+0080–U+009F).
 *
 * Stateful, so a stream may split a sequence anywhere: the part in the next chunk is still dropped. Nothing is
 * held back: what is dropped needs no buffer, only the state.
 */
export class TerminalFilter {
  private state: State = 'text';

  write(chunk: string): string {
    if (this.state === 'text' && !CONTROLS.test(chunk)) return chunk;
    let out = '';
    for (const ch of chunk) {
      const c = ch.codePointAt(0)!;
      if (this.step(c)) out += ch;
    }
    return out;
  }

  /** Whether `c` is printed; moves the state on. */
  private step(c: number): boolean {
    switch (this.state) {
      case 'esc':
        if (c === 0x5b) this.state = 'csi';
        else if (ESC_STRINGS.has(c)) this.state = 'string';
        else if (c >= 0x20 && c <= 0x2f) this.state = 'intermediate';
        else if (c >= 0x30 && c <= 0x7e)
          this.state = 'text'; // a two-byte sequence (ESC c resets the terminal)
        else if (c !== ESC) return this.reset(c);
        return false;
      case 'csi':
        if (c >= 0x20 && c <= 0x3f) return false; // parameters and intermediates
        if (c >= 0x40 && c <= 0x7e) {
          this.state = 'text'; // the final byte
          return false;
        }
        return this.reset(c);
      case 'intermediate':
        if (c >= 0x20 && c <= 0x2f) return false;
        if (c >= 0x30 && c <= 0x7e) {
          this.state = 'text';
          return false;
        }
        return this.reset(c);
      case 'string':
        // Ended by BEL or ST; also by a newline (its payload is dropped either way), so an unterminated string
        // does not swallow the rest of the output.
        if (c === BEL || c === C1_ST || c === 0x18 || c === 0x1a) this.state = 'text';
        else if (c === ESC) this.state = 'stringEsc';
        else if (c === 0x0a) return this.reset(c);
        return false;
      case 'stringEsc':
        // ESC \ is ST; any other ESC ends the string and starts a new sequence.
        if (c === 0x5c) {
          this.state = 'text';
          return false;
        }
        this.state = 'esc';
        return this.step(c);
      case 'text':
        return this.text(c);
    }
  }

  /** A sequence cut short by `c`: back to text, where `c` itself is judged. */
  private reset(c: number): boolean {
    this.state = 'text';
    return this.text(c);
  }

  private text(c: number): boolean {
    if (c === ESC) this.state = 'esc';
    else if (c === C1_CSI) this.state = 'csi';
    else if (C1_STRINGS.has(c)) this.state = 'string';
    return c === 0x0a || c === 0x09 || (c >= 0x20 && c < 0x7f) || c > 0x9f;
  }
}

/**
 * From now on, everything written to `stream` is filtered (unless `isRaw()`): the one place where the CLI's output
 * (its own lines, the server's text, logs, diffs, errors) leaves the process. A filter per stream, so a sequence
 * split across two writes is still caught.
 */
export function filterOutput(stream: NodeJS.WriteStream, isRaw: () => boolean): void {
  const write = stream.write.bind(stream) as (chunk: string | Uint8Array, ...rest: unknown[]) => boolean;
  const filter = new TerminalFilter();
  const decoder = new StringDecoder('utf8');
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    if (isRaw()) return write(chunk, ...rest);
    // An encoding argument is only meaningful for strings; the text goes out as UTF-8 either way.
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    return write(filter.write(text), ...rest.filter((r) => typeof r === 'function'));
  }) as typeof stream.write;
}

/**
 * JSON for `--json`: JSON.stringify escapes C0 controls but not DEL and C1 (U+007F–U+009F), which the output filter
 * would then strip from inside strings; escaped here, the data survives and nothing reaches the terminal raw.
 */
export function jsonText(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(
    /[\x7f-\x9f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
