import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { workerNamePrefix } from '../../testbed/workerProcess';

export { connected, exited, outputTail, startWorkerProcess, workerNamePrefix } from '../../testbed/workerProcess';

/**
 * What a worker process left behind on this machine: its sandbox dirs under NIGHTSHIFT_HOME, its cgroups, bwrap
 * processes.
 */
export function leftoversOf(home: string, child: ChildProcess): string[] {
  const prefix = workerNamePrefix(child);
  const found: string[] = [];
  const work = path.join(home, 'work');
  if (existsSync(work))
    found.push(
      ...readdirSync(work)
        .filter((w) => w.startsWith(prefix))
        .map((w) => `sandbox dir ${path.join(work, w)}`),
    );
  for (const controller of ['pids', 'memory', 'cpu']) {
    const dir = `/sys/fs/cgroup/${controller}/nightshift`;
    if (existsSync(dir))
      found.push(
        ...readdirSync(dir)
          .filter((g) => g.startsWith(prefix.replace(/[^A-Za-z0-9._-]/g, '_')))
          .map((g) => `cgroup ${path.join(dir, g)}`),
      );
  }
  return found;
}

/** Command lines of running processes that match `pattern` (pgrep -f), or none. */
export function pgrep(pattern: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', pattern], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
