import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { SandboxLimits } from './policy';

const ROOT = process.env.NIGHTSHIFT_CGROUP_ROOT || '/sys/fs/cgroup';
const CONTROLLERS = ['pids', 'memory', 'cpu'] as const;
const PARENT = 'nightshift';
const CPU_PERIOD_US = 100_000;

/** cgroup v1 with writable pids, memory and cpu controllers (as root on this kind of machine), or why not. */
export async function cgroupsUnavailable(): Promise<string | null> {
  for (const c of CONTROLLERS) {
    const dir = path.join(ROOT, c);
    if (!existsSync(path.join(dir, 'cgroup.procs'))) return `no cgroup v1 "${c}" controller at ${dir}`;
    try {
      await fs.mkdir(path.join(dir, PARENT), { recursive: true });
    } catch (err) {
      return `cannot create cgroups under ${dir}: ${(err as NodeJS.ErrnoException).code}`;
    }
  }
  return null;
}

/**
 * The cgroups of one run (`nightshift/<group>/<run>` in each controller): every process of every exec joins them,
 * so the limits hold for the run as a whole and teardown can find every process, even one that left its session.
 */
export class RunCgroup {
  private readonly rel: string;

  constructor(group: string, runId: string) {
    this.rel = path.join(PARENT, safe(group), safe(runId));
  }

  dir(controller: (typeof CONTROLLERS)[number]): string {
    return path.join(ROOT, controller, this.rel);
  }

  /** The files a new process writes its pid to, to join. */
  procsFiles(): string[] {
    return CONTROLLERS.map((c) => path.join(this.dir(c), 'cgroup.procs'));
  }

  async apply(limits: SandboxLimits): Promise<void> {
    for (const c of CONTROLLERS) await fs.mkdir(this.dir(c), { recursive: true });
    await fs.writeFile(path.join(this.dir('pids'), 'pids.max'), String(limits.pids));
    await fs.writeFile(path.join(this.dir('memory'), 'memory.limit_in_bytes'), String(limits.memoryBytes));
    // Without swap limits the memory limit would just push the run into swap.
    await fs.writeFile(path.join(this.dir('memory'), 'memory.swappiness'), '0').catch(() => undefined);
    await fs.writeFile(path.join(this.dir('cpu'), 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
    await fs.writeFile(path.join(this.dir('cpu'), 'cpu.cfs_quota_us'), String(Math.round(limits.cpus * CPU_PERIOD_US)));
  }

  /** Counters read before an exec, to tell afterwards which limit it ran into. */
  counters(): Promise<CgroupCounters> {
    return countersIn(this.dir('memory'), this.dir('pids'));
  }

  /** SIGKILL every process in the run's cgroup, until none is left. */
  killAll(): Promise<void> {
    return killProcsIn(this.dir('pids'));
  }

  async remove(): Promise<void> {
    await this.killAll();
    for (const c of CONTROLLERS) await removeTree(path.join(ROOT, c, this.rel));
  }
}

/** How often a cgroup's limits have refused it: OOM kills, and forks refused at the process limit. */
export interface CgroupCounters {
  oomKills: number;
  pidsMax: number;
}

/** The counters of a memory and a pids cgroup (the same file names and lines in cgroup v1 and v2). */
export async function countersIn(memoryDir: string, pidsDir: string): Promise<CgroupCounters> {
  const read = (file: string) => fs.readFile(file, 'utf8').catch(() => '');
  const memory =
    (await read(path.join(memoryDir, 'memory.oom_control'))) || (await read(path.join(memoryDir, 'memory.events')));
  const oom = /oom_kill (\d+)/.exec(memory);
  const pids = /max (\d+)/.exec(await read(path.join(pidsDir, 'pids.events')));
  return { oomKills: Number(oom?.[1] ?? 0), pidsMax: Number(pids?.[1] ?? 0) };
}

/** The memory and pids cgroup directories of a process, from its `/proc/<pid>/cgroup` text (v1 or v2). */
export function cgroupDirsOf(procCgroup: string): { memory: string; pids: string } | undefined {
  const dirs: Record<string, string> = {};
  for (const line of procCgroup.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '') dirs.unified = path.join(ROOT, m[2]);
    for (const c of m[1].split(',')) if (c === 'memory' || c === 'pids') dirs[c] = path.join(ROOT, c, m[2]);
  }
  const memory = dirs.memory ?? dirs.unified;
  const pids = dirs.pids ?? dirs.unified;
  return memory && pids ? { memory, pids } : undefined;
}

/** How many processes a pids cgroup holds now. */
export async function pidsCurrent(pidsDir: string): Promise<number> {
  return Number((await fs.readFile(path.join(pidsDir, 'pids.current'), 'utf8').catch(() => '0')).trim());
}

/** Remove the cgroups of a whole group (a dead worker's), deepest first. */
export async function removeCgroupGroup(group: string): Promise<void> {
  for (const c of CONTROLLERS) await removeTree(path.join(ROOT, c, PARENT, safe(group)));
}

async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await removeTree(path.join(dir, entry.name));
  }
  // A cgroup is removed with rmdir (its files are virtual); it fails while processes remain — a dead worker's
  // sandboxes may still be going, or dying: kill what is left, then rmdir.
  await killProcsIn(dir);
  await fs.rmdir(dir).catch(() => undefined);
}

/** SIGKILL every process in a cgroup, until none is left (at most about a second). */
async function killProcsIn(dir: string): Promise<void> {
  const procs = path.join(dir, 'cgroup.procs');
  for (let round = 0; round < 20; round++) {
    const pids = (await fs.readFile(procs, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}
