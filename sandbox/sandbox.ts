import type { EgressDecision } from './egress';
import type { SandboxPolicy } from './policy';
import type { SandboxImage } from '../contracts/run';

/** Where a run's sandbox lives on the worker's disk, and what it may reach. */
export interface SandboxOptions extends SandboxPolicy {
  runId: string;
  /**
   * Host directory holding this run's sandbox: `workspace/` (the repo, read-write), `home/`, `tmp/`, and `meta/`
   * (read-only inside, at /nightshift).
   */
  root: string;
}

/** What a run asks of the image its sandboxes start from: one by name (`sandbox.image`), the toolchains it holds. */
export type ImageWanted = Pick<SandboxPolicy, 'image' | 'toolchains'>;

export interface ExecOptions {
  /** argv; run with the workspace as working directory. */
  cmd: string[];
  /**
   * Extra environment on top of the sandbox's base (PATH, HOME, LANG, TMPDIR). Nothing is inherited from the worker.
   */
  env?: Record<string, string>;
  /** Wall-time limit; the whole process group is killed when it passes. */
  timeoutMs: number;
  /** Streaming output, as it arrives. */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  /** Abort (e.g. activity cancellation) kills the whole process group. */
  signal?: AbortSignal;
  /** Each egress decision (allowed or denied), for the run's log. */
  onEgress?: (decision: EgressDecision) => void;
  /** Bridge the model gateway the caller runs on the sandbox's `net/model.sock` to 127.0.0.1:3129 inside. */
  modelGateway?: boolean;
}

export interface ExecResult {
  /** null when killed by a signal. */
  exitCode: number | null;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
  /** A limit the command ran into, in words ("out of memory (limit 512 MiB)"), when one was hit. */
  limitHit?: string;
}

export interface Sandbox {
  readonly runId: string;
  /** Host path of the read-write workspace (the only writable place besides a private tmp and HOME). */
  readonly workspace: string;
  exec(opts: ExecOptions): Promise<ExecResult>;
  /** Kill anything still running and delete every file of the sandbox. Idempotent. */
  teardown(): Promise<void>;
}

export interface SandboxDriver {
  readonly name: string;
  /**
   * Create (or, after a worker restart, reopen) the sandbox of a run; creates the directories but not the workspace
   * content.
   */
  open(opts: SandboxOptions): Promise<Sandbox>;
  /**
   * The image its sandboxes start from when a run asks `wanted` (by default: its default image), by name and content
   * digest; none for a driver that uses the host's files.
   */
  image(wanted: ImageWanted): Promise<SandboxImage | undefined>;
  /**
   * Why this worker does not start a sandbox from the image a run asks (`wanted`); undefined when it does. A driver
   * without images has none.
   */
  refusal?(wanted: ImageWanted): Promise<string | undefined>;
}
