import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { hostToolEnv } from './env';

export interface ProgramRequest {
  id: number;
  file: string;
  args: string[];
  cwd?: string;
  env: NodeJS.ProcessEnv;
  maxBuffer: number;
}

export interface ProgramReply {
  id: number;
  stdout: string;
  stderr: string;
  /** As execFile's error: `code` the exit status, or a system error's name (ENOENT) when it did not start. */
  error?: { message: string; code: number | string | null; signal: string | null };
}

/** A program that did not exit 0, or did not start: what it printed, and how it ended. */
export class ProgramError extends Error {
  constructor(
    message: string,
    readonly code: number | string | null,
    readonly signal: string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'ProgramError';
  }
}

export interface ProgramOptions {
  cwd?: string;
  /** The program's whole environment: nothing of the worker's is added. */
  env: NodeJS.ProcessEnv;
  /** Bytes of stdout (or stderr) past which the program is killed and the call fails; 64 MiB when not given. */
  maxBuffer?: number;
}

interface Pending {
  /** The spawner the call went to. */
  child: ChildProcess;
  resolve: (out: { stdout: string; stderr: string }) => void;
  reject: (err: Error) => void;
}

let spawner: ChildProcess | undefined;
const pending = new Map<number, Pending>();
let nextId = 1;

/** The spawner, started on first use with the host tools' lean environment: it never holds the worker's secrets. */
function theSpawner(): ChildProcess {
  if (spawner?.connected) return spawner;
  const child = fork(path.join(__dirname, 'spawner.js'), [], {
    env: hostToolEnv(),
    execArgv: [],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('message', (reply: ProgramReply) => {
    const waiting = pending.get(reply.id);
    if (!waiting) return;
    pending.delete(reply.id);
    if (pending.size === 0) idle(child);
    if (!reply.error) waiting.resolve({ stdout: reply.stdout, stderr: reply.stderr });
    else {
      const { message, code, signal } = reply.error;
      waiting.reject(new ProgramError(message, code, signal, reply.stdout, reply.stderr));
    }
  });
  // A spawner gone (killed, out of memory) fails what it held; the next call starts another.
  child.on('exit', (code, signal) => {
    if (spawner === child) spawner = undefined;
    for (const [id, waiting] of pending) {
      if (waiting.child !== child) continue;
      pending.delete(id);
      waiting.reject(
        new ProgramError(`the spawner exited (${signal ?? code}) before the program did`, null, null, '', ''),
      );
    }
  });
  child.on('error', () => undefined); // its exit says it
  spawner = child;
  idle(child);
  return child;
}

/** How long a spawner with nothing to do is kept: then it is let go, and the next call starts another. */
const IDLE_MS = 10_000;
let idleTimer: NodeJS.Timeout | undefined;

/**
 * An idle spawner keeps no process alive: only a call in flight does, as its own child would. Let go after a while
 * (it exits when disconnected): a module loaded afresh in a long-lived process (a test runner's) leaves none behind.
 */
function idle(child: ChildProcess): void {
  child.unref();
  (child.channel as { unref?: () => void } | undefined)?.unref?.();
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (pending.size > 0 || spawner !== child) return;
    spawner = undefined;
    child.disconnect();
  }, IDLE_MS);
  idleTimer.unref();
}

/**
 * Runs a program as execFile does (no shell; resolves to what it printed, rejects with a ProgramError), started by the
 * spawner so that the worker's event loop never waits on a fork.
 */
export function runProgram(
  file: string,
  args: string[],
  options: ProgramOptions,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = theSpawner();
    clearTimeout(idleTimer);
    const id = nextId++;
    pending.set(id, { child, resolve, reject });
    child.ref();
    (child.channel as { ref?: () => void } | undefined)?.ref?.();
    const req: ProgramRequest = {
      id,
      file,
      args,
      cwd: options.cwd,
      env: options.env,
      maxBuffer: options.maxBuffer ?? 64 * 1024 * 1024,
    };
    child.send(req, (err) => {
      if (!err || !pending.delete(id)) return;
      if (pending.size === 0) idle(child);
      reject(new ProgramError(`cannot reach the spawner: ${err.message}`, null, null, '', ''));
    });
  });
}
