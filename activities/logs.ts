import type { ArtifactStore } from '../store/artifacts';
import type { RunLog } from '../store/runLog';

const MAX_LOG_BYTES = 16 * 1024 * 1024;
const TAIL_LINES = 40;
const TAIL_CHARS = 4000;

/** Collects one command's output: streams it into the run's live log and keeps it whole for the artifact store. */
export class CommandLog {
  private chunks: string[] = [];
  private bytes = 0;
  private truncated = false;
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly runLog: RunLog, private readonly runId: string, header: string) {
    this.write(`\n=== ${header} ===\n`);
  }

  write(text: string): void {
    if (this.bytes < MAX_LOG_BYTES) {
      this.chunks.push(text);
      this.bytes += Buffer.byteLength(text);
    } else if (!this.truncated) {
      this.truncated = true;
      this.chunks.push(`\n[nightshift: log truncated at ${MAX_LOG_BYTES} bytes]\n`);
    }
    // Appends are chained so the live log keeps the order of the output.
    this.writes = this.writes.then(() => this.runLog.append(this.runId, text)).catch(() => undefined);
  }

  text(): string {
    return this.chunks.join('');
  }

  /** Flush the live log and store the whole log; returns its artifact id and tail. */
  async close(store: ArtifactStore): Promise<{ logId: string; logTail: string }> {
    await this.writes;
    const text = this.text();
    return { logId: await store.put(text), logTail: tail(text) };
  }
}

export function tail(text: string): string {
  const lines = text.trimEnd().split('\n').slice(-TAIL_LINES).join('\n');
  return lines.length > TAIL_CHARS ? lines.slice(-TAIL_CHARS) : lines;
}
