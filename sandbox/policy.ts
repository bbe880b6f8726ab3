import type { Spec } from '../spec/schema';

/** What a run's processes may use. Memory, processes and CPU are enforced by a cgroup; files by rlimits. */
export interface SandboxLimits {
  memoryBytes: number;
  cpus: number;
  /** Processes and threads at once (a fork bomb stops here). */
  pids: number;
  openFiles: number;
  /** Largest file a process may write. */
  fileSizeBytes: number;
}

const DEFAULTS = { pids: 512, openFiles: 1024, fileSizeBytes: 1024 ** 3 };

/** The limits of a run, from its spec (memory, cpus) and the server's defaults (the rest). */
export function limitsFor(sandbox: Spec['sandbox']): SandboxLimits {
  return { memoryBytes: sandbox.memory, cpus: sandbox.cpus, ...DEFAULTS };
}
