import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, promises as fs, readlinkSync } from 'node:fs';
import * as path from 'node:path';
import type { ExecOptions, ExecResult, Sandbox, SandboxDriver, SandboxOptions } from './sandbox';

const BWRAP = process.env.NIGHTSHIFT_BWRAP || 'bwrap';
const KILL_GRACE_MS = 2000;

// Read-only system paths. Not `/` (its unix sockets stay connectable), not all of /etc (it can hold secrets).
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
const ETC_ENTRIES = ['passwd', 'group', 'hosts', 'nsswitch.conf', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'localtime', 'alternatives', 'ssl', 'ca-certificates', 'ca-certificates.conf', 'mime.types', 'gitconfig'];

const BASE_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/home/sandbox',
  LANG: 'C.UTF-8',
  TMPDIR: '/tmp',
  USER: 'sandbox',
};

/** Process groups running per run, across sandbox instances, so a reopened sandbox can still tear them down. */
const running = new Map<string, Set<ChildProcess>>();

/**
 * bubblewrap sandboxes: each exec is a fresh `bwrap` with new namespaces (no network), a cleared environment,
 * the system read-only and only the run's workspace, HOME and /tmp writable. Stateless between execs, so a new
 * worker process can reopen a run's sandbox from its directory.
 * Limits: wall time here; CPU, memory and process counts (cgroups) come with the sandbox hardening.
 */
export class BwrapDriver implements SandboxDriver {
  readonly name = 'bwrap';

  async open(opts: SandboxOptions): Promise<Sandbox> {
    for (const dir of ['workspace', 'home', 'tmp', 'meta']) await fs.mkdir(path.join(opts.root, dir), { recursive: true });
    return new BwrapSandbox(opts);
  }
}

export class BwrapSandbox implements Sandbox {
  readonly runId: string;
  readonly workspace: string;

  constructor(private readonly opts: SandboxOptions) {
    this.runId = opts.runId;
    this.workspace = path.join(opts.root, 'workspace');
  }

  args(readOnly: ExecOptions['readOnly'] = [], env: Record<string, string> = {}): string[] {
    const args = ['--unshare-all', '--die-with-parent', '--new-session', '--clearenv', '--proc', '/proc', '--dev', '/dev'];
    for (const dir of SYSTEM_DIRS) {
      if (!existsSync(dir)) continue;
      // On merged-/usr systems /bin etc. are symlinks into /usr: recreate the link, don't bind twice.
      if (lstatSync(dir).isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
      else args.push('--ro-bind', dir, dir);
    }
    for (const entry of ETC_ENTRIES) {
      const p = path.join('/etc', entry);
      if (existsSync(p)) args.push('--ro-bind', p, p);
    }
    const root = this.opts.root;
    args.push('--bind', path.join(root, 'workspace'), '/workspace');
    args.push('--bind', path.join(root, 'home'), BASE_ENV.HOME);
    args.push('--bind', path.join(root, 'tmp'), '/tmp');
    for (const { host, target } of readOnly) args.push('--ro-bind', host, target);
    // The root bwrap builds is a tmpfs: make it read-only too, after every mount point exists.
    args.push('--remount-ro', '/');
    for (const [k, v] of Object.entries({ ...BASE_ENV, ...env })) args.push('--setenv', k, v);
    args.push('--chdir', '/workspace');
    return args;
  }

  exec(opts: ExecOptions): Promise<ExecResult> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) {
        resolve({ exitCode: null, timedOut: false, cancelled: true, durationMs: 0 });
        return;
      }
      const child = spawn(BWRAP, [...this.args(opts.readOnly, opts.env), '--', ...opts.cmd], {
        detached: true, // its own process group, so a kill reaches grandchildren too
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {},
      });
      const group = running.get(this.runId) ?? new Set<ChildProcess>();
      running.set(this.runId, group);
      group.add(child);

      let timedOut = false;
      let cancelled = false;
      const stop = () => killGroup(child);
      const timer = setTimeout(() => {
        timedOut = true;
        stop();
      }, opts.timeoutMs);
      const onAbort = () => {
        cancelled = true;
        stop();
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });

      child.stdout!.setEncoding('utf8');
      child.stderr!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => opts.onOutput?.(chunk, 'stdout'));
      child.stderr!.on('data', (chunk: string) => opts.onOutput?.(chunk, 'stderr'));

      const finish = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        group.delete(child);
        if (group.size === 0) running.delete(this.runId);
      };
      child.on('error', (err: NodeJS.ErrnoException) => {
        finish();
        reject(err.code === 'ENOENT' ? new Error('bubblewrap (bwrap) is not installed: apt-get install bubblewrap') : err);
      });
      child.on('close', (code) => {
        finish();
        // Whatever the command left running in its group dies with it.
        killGroup(child, 'SIGKILL');
        resolve({ exitCode: code, timedOut, cancelled, durationMs: Date.now() - started });
      });
    });
  }

  async teardown(): Promise<void> {
    const group = running.get(this.runId);
    if (group) {
      await Promise.all([...group].map((child) => new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('close', () => resolve());
        killGroup(child);
      })));
    }
    await fs.rm(this.opts.root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

/** SIGTERM the process group, then SIGKILL it if it is still there after a grace period. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    return; // already gone
  }
  if (signal === 'SIGTERM') {
    setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, KILL_GRACE_MS).unref();
  }
}

/** The bwrap version, or null when it is missing (for `doctor`). */
export function bwrapAvailable(): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(BWRAP, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code === 0 ? out.trim() : null));
  });
}
