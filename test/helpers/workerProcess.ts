import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { connected, exited, startWorkerProcess, workerNamePrefix } from '../../testbed/workerProcess';
import type { RunState } from '../../contracts/run';
import { startTestStack, type TestStack } from './stack';

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

/** The first of `ids` seen mid-agent on a worker still alive, and that worker's process. */
export async function runMidAgent(
  stack: TestStack,
  workers: ChildProcess[],
  ids: string[],
): Promise<{ run: string; worker: ChildProcess }> {
  const alive = () => workers.filter((w) => w.exitCode === null && w.signalCode === null);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    for (const id of ids) {
      const res = await stack.api('GET', `/v1/runs/${id}`);
      if (res.status !== 200) continue; // not started yet
      const s = res.body as RunState;
      const worker = alive().find((w) => s.workspace?.worker.startsWith(workerNamePrefix(w)));
      if (s.status === 'agent' && worker) return { run: id, worker };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`none of ${ids.join(', ')} was seen mid-agent within 60 s`);
}

/** A test stack without a worker of its own, and `count` worker processes serving it, for every test of the file. */
export function useWorkerProcesses(count: number): { stack: TestStack; workers: ChildProcess[] } {
  const fleet = { stack: undefined as unknown as TestStack, workers: [] as ChildProcess[] };
  beforeAll(async () => {
    fleet.stack = await startTestStack({ worker: false, env: { NIGHTSHIFT_MAX_SANDBOXES: '4' } });
    for (let i = 0; i < count; i++) fleet.workers.push(startWorkerProcess(fleet.stack.env));
    await Promise.all(fleet.workers.map((w) => connected(w)));
  }, 240_000);
  afterAll(async () => {
    for (const w of fleet.workers) w.kill('SIGTERM');
    await Promise.all(fleet.workers.map(exited));
    await fleet.stack?.stop();
  });
  return fleet;
}
