import type { Spec } from '../spec/schema';
import type { CgroupCounters } from './cgroup';

/** What a run's processes may use. Memory, processes and CPU are enforced by a cgroup; files by rlimits. */
export interface SandboxLimits {
  memoryBytes: number;
  cpus: number;
  /** Processes and threads at once (a fork bomb stops here). */
  pids: number;
  openFiles: number;
  /** Largest file a process may write. */
  fileSizeBytes: number;
  /** What the workspace, HOME and tmp may hold together on disk. */
  diskBytes: number;
  /** Files and directories they may hold together: empty files take no disk blocks, yet each takes an inode. */
  files: number;
}

const DEFAULTS = { pids: 512, openFiles: 1024, fileSizeBytes: 1024 ** 3 };

/**
 * What a run's sandbox may do, in one place: its limits and the hosts it may reach. The rest is fixed for every
 * sandbox (sandbox/layout.ts: the writable paths, HOME, the base environment); a run's secrets are the ones its
 * spec names and the server allows (secrets/secretStore.ts).
 */
export interface SandboxPolicy {
  limits: SandboxLimits;
  /** `host[:port]`, `*.suffix[:port]`, through the worker's egress proxy; empty = no network. */
  network: string[];
  /**
   * Internal `host:port`s (loopback, private, the server's own …) that `network` may reach: the server admin's
   * openings (NIGHTSHIFT_EGRESS_INTERNAL), never the spec's. None = internal addresses are refused.
   */
  internal?: string[];
  /** The image the sandbox starts from (docker driver; the spec's `sandbox.image`); unset = the driver's default. */
  image?: string;
  /**
   * The server's toolchains the run asked for (`sandbox.toolchains`), by name: each driver makes them the sandbox's
   * (bwrap binds the worker's directory of each and puts its `bin` on PATH: sandbox/toolchains.ts). None when absent.
   */
  toolchains?: string[];
}

/**
 * The policy of a run, from its spec (memory, cpus, disk, network), the worker's openings and the server's defaults
 * (the rest).
 */
export function policyFor(sandbox: Spec['sandbox'], internal: string[] = []): SandboxPolicy {
  return {
    limits: {
      memoryBytes: sandbox.memory,
      cpus: sandbox.cpus,
      diskBytes: sandbox.disk,
      files: sandbox.files,
      ...DEFAULTS,
    },
    network: sandbox.network,
    internal,
    ...(sandbox.image ? { image: sandbox.image } : {}),
    // A run started before toolchains were a spec field has none.
    toolchains: sandbox.toolchains ?? [],
  };
}

const mib = (n: number) => `${Math.round(n / 1024 ** 2)} MiB`;

/** The limit a command ran into, in words, from its cgroup counters before and after; undefined when none. */
export function describeLimitHit(
  limits: SandboxLimits,
  before: CgroupCounters,
  after: CgroupCounters,
): string | undefined {
  if (after.oomKills > before.oomKills) return `out of memory (limit ${mib(limits.memoryBytes)})`;
  if (after.pidsMax > before.pidsMax) return processLimitHit(limits);
  return undefined;
}

export function processLimitHit(limits: SandboxLimits): string {
  return `too many processes (limit ${limits.pids})`;
}

/** The words for a command killed at the disk limit, of bytes or of files. */
export function diskLimitHit(limits: SandboxLimits, of: 'bytes' | 'files'): string {
  if (of === 'files')
    return `too many files (limit ${limits.files} files and directories for the workspace, HOME and tmp)`;
  return `disk full (limit ${mib(limits.diskBytes)} for the workspace, HOME and tmp)`;
}
