import type { Spec } from '../spec/schema';
import type { AgentSummary } from '../contracts/run';

/** What an adapter needs to start its agent inside the sandbox. */
export interface AgentContext {
  agent: Spec['agent'];
  prompt: string;
  /** The prompt as a file, at this path inside the sandbox. */
  promptFile: string;
  iteration: number;
  /** Feedback for this iteration (failed checks, scope, review, a human's requested changes), if any. */
  feedback?: string;
  /** The model API base URL inside the sandbox (the run's gateway), when the agent talks to one. */
  modelBaseUrl?: string;
}

export interface AgentInvocation {
  cmd: string[];
  env: Record<string, string>;
}

/** Reads a CLI's JSON event stream as it arrives. */
export interface EventReader {
  /** Raw output in; lines for the run's live log out. */
  push(chunk: string): string;
  summary(): AgentSummary;
}

/**
 * A CLI's JSON-lines event stream: each event the CLI prints becomes log text (`describe`, which also fills the
 * summary); lines that are not JSON (a CLI's stray text) pass through as they are.
 */
/** One event of a CLI's JSON stream: untyped, and read defensively by each adapter's describe(). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the vendors' event shapes are theirs to change
export type JsonEvent = Record<string, any>;

export abstract class JsonEventReader implements EventReader {
  private readonly lines = new LineSplitter();

  constructor(protected readonly s: AgentSummary) {}

  push(chunk: string): string {
    let out = '';
    for (const line of this.lines.push(chunk)) {
      const e = parseJsonLine(line);
      out += e ? this.describe(e) : `${line}\n`;
    }
    return out;
  }

  summary(): AgentSummary {
    return { ...this.s };
  }

  /** The log lines for one event ('' for none). */
  protected abstract describe(e: JsonEvent): string;
}

/** One kind of agent (claude-code, codex, command): how to start it, and how to read what it prints. */
export interface AgentAdapter {
  readonly kind: Spec['agent']['kind'];
  invocation(ctx: AgentContext): AgentInvocation;
  /** Absent: the output is the log as it is (the command agent). */
  reader?(): EventReader;
}

/** Splits a stream into complete lines, keeping a partial last line for the next chunk. */
class LineSplitter {
  private rest = '';

  push(chunk: string): string[] {
    const lines = (this.rest + chunk).split('\n');
    this.rest = lines.pop() ?? '';
    return lines.filter((l) => l.trim());
  }
}

/** A JSON line, or undefined when the line is not JSON (a CLI's stray text). */
function parseJsonLine(line: string): JsonEvent | undefined {
  try {
    const v = JSON.parse(line);
    return typeof v === 'object' && v !== null ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Shortens a tool input or output for one log line. */
export function oneLine(text: unknown, max = 300): string {
  const s = (typeof text === 'string' ? text : JSON.stringify(text)) ?? '';
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
