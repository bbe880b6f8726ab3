import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Run ids: ours (ns-<hex>) and those Temporal Schedules make (<id>-<RFC 3339 time>). */
export const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;

/**
 * The combined, append-only log of one run (stage headers and command output), which the API serves while the
 * run works. Per-stage logs are also stored whole in the artifact store; this one is for watching.
 */
export class RunLog {
  constructor(private readonly home: string) {}

  fileOf(runId: string): string {
    if (!RUN_ID.test(runId)) throw new Error(`not a run id: ${runId}`);
    return path.join(this.home, 'runs', runId, 'run.log');
  }

  async append(runId: string, text: string): Promise<void> {
    const file = this.fileOf(runId);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.appendFile(file, text);
  }

  /** How many bytes the log has (0 before its first line). */
  async size(runId: string): Promise<number> {
    try {
      return (await fs.stat(this.fileOf(runId))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
  }

  /**
   * The log from byte `from` on (at most `max` bytes), and the offset to ask for next. It stops before a character
   * still incomplete (being written, or cut by `max`), so offsets never split one.
   */
  async read(runId: string, from = 0, max = Infinity): Promise<{ text: string; next: number }> {
    let handle;
    try {
      handle = await fs.open(this.fileOf(runId), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', next: from };
      throw err;
    }
    try {
      const { size } = await handle.stat();
      if (from >= size) return { text: '', next: size };
      const buf = Buffer.alloc(Math.min(size - from, max));
      await handle.read(buf, 0, buf.length, from);
      const whole = wholeUtf8Length(buf);
      return { text: buf.toString('utf8', 0, whole), next: from + whole };
    } finally {
      await handle.close();
    }
  }
}

/** How many leading bytes of `buf` are whole UTF-8 characters (all of it, unless it ends inside one). */
function wholeUtf8Length(buf: Buffer): number {
  let lead = buf.length - 1;
  while (lead >= 0 && buf.length - lead <= 3 && (buf[lead] & 0xc0) === 0x80) lead--;
  if (lead < 0) return buf.length;
  const width = buf[lead] >= 0xf0 ? 4 : buf[lead] >= 0xe0 ? 3 : buf[lead] >= 0xc0 ? 2 : 1;
  return lead + width > buf.length ? lead : buf.length;
}
