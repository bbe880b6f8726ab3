import { spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

const CLI = path.resolve(__dirname, '..', 'cli', 'main.js');

/** The last few KB each worker process printed (stdout and stderr), for a failure to quote. */
const tails = new WeakMap<ChildProcess, string>();

/** A real `nightshift worker` process with this environment (a test stack's `env`, or a bench's). */
export function startWorkerProcess(env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  tails.set(child, '');
  for (const stream of [child.stdout!, child.stderr!])
    stream.on('data', (chunk: Buffer) => tails.set(child, (tails.get(child) + chunk.toString()).slice(-4000)));
  return child;
}

/** What the worker process printed last: why it exited as it did. */
export function outputTail(child: ChildProcess): string {
  return tails.get(child) ?? '';
}

/**
 * Resolves once the worker process says it is connected (`nightshift worker` prints it when it polls); rejects, quoting
 * what it printed, when it exits first or takes longer than `timeoutMs` (three starting at once on two cores busy with
 * the suite's Go builds took over a minute).
 */
export function connected(child: ChildProcess, timeoutMs = 180_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const settle = (err?: Error) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stdout!.off('data', onData);
      if (err) reject(err);
      else resolve();
    };
    const fail = (why: string) => settle(new Error(`worker ${child.pid} ${why}: ${outputTail(child)}`));
    const onExit = (code: number | null, signal: string | null) => fail(`exited (${signal ?? code}) before connecting`);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('worker connected to')) settle();
    };
    const timer = setTimeout(() => fail(`did not connect within ${timeoutMs} ms`), timeoutMs);
    child.once('exit', onExit);
    child.stdout!.on('data', onData);
  });
}

export function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));
}

/** The prefix of the names a worker process gives itself (`<hostname>-<pid>-<random>`, see workers/worker.ts). */
export function workerNamePrefix(child: ChildProcess): string {
  return `${os.hostname()}-${child.pid}-`;
}
