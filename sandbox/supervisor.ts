import type { Readable } from 'node:stream';
import type { CgroupCounters } from './cgroup';
import { pollUntil, watchDisk } from './disk';
import { writableDirs } from './layout';
import { describeLimitHit, diskLimitHit, processLimitHit, type SandboxLimits } from './policy';
import type { ExecOptions, ExecResult, SandboxOptions } from './sandbox';

/** The result of an exec whose signal was aborted before it started: nothing ran. */
export function cancelledBeforeStart(): ExecResult {
  return { exitCode: null, timedOut: false, cancelled: true, durationMs: 0 };
}

/**
 * `run`, with the memory or process limit its command ran into (read from the run's cgroup counters before and
 * after) added to its result, unless the result already names one. Without counters (no cgroups), `run` alone.
 */
export async function withCgroupLimits(
  limits: SandboxLimits,
  counters: (() => Promise<CgroupCounters>) | undefined,
  run: () => Promise<ExecResult>,
): Promise<ExecResult> {
  const before = await counters?.();
  const result = await run();
  const after = await counters?.();
  if (!result.limitHit && before && after) result.limitHit = describeLimitHit(limits, before, after);
  return result;
}

/**
 * One running command of a sandbox, watched the same way by every driver: its wall-time limit, its abort signal and
 * its sandbox's disk limit. Whichever trips first calls `stop` (the driver's kill) and is what the result says ended
 * the command. Made once the command runs; `end` when it has ended.
 */
export class ExecSupervisor {
  private timedOut = false;
  private cancelled = false;
  private limitHit?: string;
  private readonly timer: NodeJS.Timeout;
  private readonly stopWatchingDisk: () => void;
  private readonly stopWatchingForks: () => void;
  private readonly onAbort = () => {
    this.cancelled = true;
    this.stop();
  };

  /**
   * `started`: when the exec began (before its setup), for the result's duration. `counters`: the run's cgroup's, when
   * it has one: a command whose fork the process limit refused is stopped then, not at its timeout — a fork bomb
   * would hold every process slot and the CPU until then, and starve the worker beside it.
   */
  constructor(
    private readonly opts: ExecOptions,
    sandbox: Pick<SandboxOptions, 'root' | 'limits'>,
    private readonly stop: () => void,
    private readonly started: number,
    counters?: () => Promise<CgroupCounters>,
  ) {
    this.stopWatchingDisk = watchDisk(
      writableDirs(sandbox.root),
      { bytes: sandbox.limits.diskBytes, files: sandbox.limits.files },
      (of) => {
        this.limitHit = diskLimitHit(sandbox.limits, of);
        stop();
      },
    );
    this.stopWatchingForks = counters
      ? watchForks(counters, () => {
          this.limitHit ??= processLimitHit(sandbox.limits);
          stop();
        })
      : () => undefined;
    this.timer = setTimeout(() => {
      this.timedOut = true;
      stop();
    }, opts.timeoutMs);
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (opts.signal?.aborted) this.onAbort(); // aborted while the sandbox was being readied for the command
  }

  /** The command's output, decoded, to the caller's `onOutput` as it arrives. */
  forwardOutput(stdout: Readable, stderr: Readable): void {
    stdout.setEncoding('utf8').on('data', (chunk: string) => this.opts.onOutput?.(chunk, 'stdout'));
    stderr.setEncoding('utf8').on('data', (chunk: string) => this.opts.onOutput?.(chunk, 'stderr'));
  }

  /** Whether the supervisor stopped the command (time, abort, disk) rather than it ending by itself. */
  get stopped(): boolean {
    return this.timedOut || this.cancelled || this.limitHit !== undefined;
  }

  /** The command has ended: stop watching it. */
  end(): void {
    clearTimeout(this.timer);
    this.stopWatchingDisk();
    this.stopWatchingForks();
    this.opts.signal?.removeEventListener('abort', this.onAbort);
  }

  result(exitCode: number | null): ExecResult {
    return {
      exitCode,
      timedOut: this.timedOut,
      cancelled: this.cancelled,
      durationMs: Date.now() - this.started,
      ...(this.limitHit ? { limitHit: this.limitHit } : {}),
    };
  }
}

/** Calls `onRefused` once when the cgroup's count of refused forks rises past where it was at the start. */
function watchForks(counters: () => Promise<CgroupCounters>, onRefused: () => void): () => void {
  const start = counters().catch(() => undefined);
  return pollUntil(async () => {
    const [before, now] = await Promise.all([start, counters().catch(() => undefined)]);
    return Boolean(before && now && now.pidsMax > before.pidsMax);
  }, onRefused);
}
