import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const CLI = path.resolve(__dirname, '..', '..', 'cli', 'main.js');

/** A real `nightshift worker` process with this environment (a test stack's `env`, or a bench's). */
export function startWorkerProcess(env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

/** Resolves once the worker process says it is connected (`nightshift worker` prints it when it polls). */
export function connected(child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`worker ${child.pid} did not connect within ${timeoutMs} ms: ${out}`)), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('worker connected to')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

/** The prefix of the names a worker process gives itself (`<hostname>-<pid>-<random>`, see workers/worker.ts). */
export function workerNamePrefix(child: ChildProcess): string {
  return `${os.hostname()}-${child.pid}-`;
}

/** What a worker process left behind on this machine: its sandbox dirs under NIGHTSHIFT_HOME, its cgroups, bwrap processes. */
export function leftoversOf(home: string, child: ChildProcess): string[] {
  const prefix = workerNamePrefix(child);
  const found: string[] = [];
  const work = path.join(home, 'work');
  if (existsSync(work)) found.push(...readdirSync(work).filter((w) => w.startsWith(prefix)).map((w) => `sandbox dir ${path.join(work, w)}`));
  for (const controller of ['pids', 'memory', 'cpu']) {
    const dir = `/sys/fs/cgroup/${controller}/nightshift`;
    if (existsSync(dir)) found.push(...readdirSync(dir).filter((g) => g.startsWith(prefix.replace(/[^A-Za-z0-9._-]/g, '_'))).map((g) => `cgroup ${path.join(dir, g)}`));
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
