import type { ArtifactStore } from '../store/artifacts';
import type { EgressDecision } from '../sandbox/egress';
import type { ExecResult } from '../sandbox/sandbox';
import type { RunLog } from '../store/runLog';
import type { CommandResult } from '../contracts/run';
import { Redactor } from '../secrets/redact';

const MAX_LOG_BYTES = 16 * 1024 * 1024;
const TAIL_LINES = 40;
const TAIL_CHARS = 4000;

/**
 * Collects one command's output: streams it into the run's live log and keeps it whole for the artifact store,
 * with the run's secret values redacted before either sees them, and capped (a flood costs neither memory nor disk).
 */
export class CommandLog {
  private chunks: string[] = [];
  private bytes = 0;
  private truncated = false;
  private writes: Promise<void> = Promise.resolve();
  /** One per stream: what one holds back (a token still arriving) must not be cut by the other's output. */
  private readonly redactors: Record<'stdout' | 'stderr', Redactor>;

  constructor(
    private readonly runLog: RunLog,
    private readonly runId: string,
    header: string,
    secrets: Record<string, string> = {},
  ) {
    this.redactors = { stdout: new Redactor(secrets), stderr: new Redactor(secrets) };
    this.keep(`\n=== ${header} ===\n`);
  }

  write(text: string, stream: 'stdout' | 'stderr' = 'stdout'): void {
    this.keep(this.redactors[stream].push(text));
  }

  private keep(text: string): void {
    if (!text) return;
    if (this.bytes >= MAX_LOG_BYTES) {
      if (this.truncated) return;
      this.truncated = true;
      text = `\n[nightshift: log truncated at ${MAX_LOG_BYTES} bytes]\n`;
    }
    this.chunks.push(text);
    this.bytes += Buffer.byteLength(text);
    // Appends are chained so the live log keeps the order of the output.
    this.writes = this.writes.then(() => this.runLog.append(this.runId, text)).catch(() => undefined);
  }

  text(): string {
    return this.chunks.join('');
  }

  /** Flush the live log and store the whole log; returns its artifact id and tail. */
  async close(store: ArtifactStore): Promise<{ logId: string; logTail: string }> {
    this.keep(this.redactors.stdout.flush());
    this.keep(this.redactors.stderr.flush());
    await this.writes;
    const text = this.text();
    return { logId: await store.put(text), logTail: tail(text) };
  }
}

const MAX_HEADER_COMMAND_CHARS = 200;

/**
 * A command as a log section's header shows it: one line, cut with an ellipsis. An inline script can be kilobytes
 * (base64 and all); the run's state and the proof manifest keep it whole.
 */
export function headerCommand(command: string): string {
  const line = command.replace(/\s+/g, ' ').trim();
  const chars = Array.from(line);
  return chars.length > MAX_HEADER_COMMAND_CHARS ? `${chars.slice(0, MAX_HEADER_COMMAND_CHARS - 1).join('')}…` : line;
}

export function tail(text: string): string {
  const lines = text.trimEnd().split('\n').slice(-TAIL_LINES).join('\n');
  return lines.length > TAIL_CHARS ? lines.slice(-TAIL_CHARS) : lines;
}

/** One egress decision as a line of the run's log. */
export function egressLine(d: EgressDecision): string {
  return `\n[nightshift egress] ${d.allowed ? 'allow' : 'deny'} ${d.method} ${d.target} (${d.reason})\n`;
}

const MAX_TRANSCRIPT_BYTES = 64 * 1024 ** 2;

/** An agent CLI's raw event stream (`transcript.jsonl`), redacted and capped, for the artifact store. */
export class Transcript {
  private readonly chunks: string[] = [];
  private bytes = 0;
  private readonly redactor: Redactor;

  constructor(secrets: Record<string, string>) {
    this.redactor = new Redactor(secrets);
  }

  write(chunk: string): void {
    if (this.bytes >= MAX_TRANSCRIPT_BYTES) return;
    const text = this.redactor.push(chunk);
    this.chunks.push(text);
    this.bytes += Buffer.byteLength(text);
  }

  /** Stores it; returns its artifact id. */
  close(store: ArtifactStore): Promise<string> {
    this.chunks.push(this.redactor.flush());
    return store.put(this.chunks.join(''));
  }
}

/**
 * Whether a command passed: exit 0, in time, within every sandbox limit (a limit hit fails it, whatever its exit code).
 */
export const commandPassed = (exec: ExecResult): boolean => exec.exitCode === 0 && !exec.timedOut && !exec.limitHit;

/** What a finished command leaves in the run's state: how it ended, and its stored log with the tail. */
export function commandResult(
  command: string,
  exec: ExecResult,
  log: { logId: string; logTail: string },
): CommandResult {
  return {
    command,
    exitCode: exec.exitCode,
    timedOut: exec.timedOut,
    durationMs: exec.durationMs,
    logId: log.logId,
    logTail: log.logTail,
    limitHit: exec.limitHit,
  };
}
