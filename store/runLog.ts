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

  /** The log from byte `from` on, and the offset to ask for next. */
  async read(runId: string, from = 0): Promise<{ text: string; next: number }> {
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
      const buf = Buffer.alloc(size - from);
      await handle.read(buf, 0, buf.length, from);
      return { text: buf.toString('utf8'), next: size };
    } finally {
      await handle.close();
    }
  }
}
