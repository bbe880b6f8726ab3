import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, existsSync, lstatSync, promises as fs, readlinkSync } from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { cgroupsUnavailable, RunCgroup } from './cgroup';
import { unmountUnder } from './overlay';
import {
  baseEnv,
  CA_BUNDLE,
  envEntries,
  GIT_OBJECTS_DIR,
  HOME_DIR,
  linkToWorker,
  META_DIR,
  NET_DIR,
  runGitObjects,
  SANDBOX_DIRS,
  SANDBOX_UID as UID,
  WORKSPACE_DIR,
  type WorkerLink,
} from './layout';
import type { ExecOptions, ExecResult, Sandbox, SandboxDriver, SandboxOptions } from './sandbox';
import { cancelledBeforeStart, ExecSupervisor, withCgroupLimits } from './supervisor';
import { toolchainPath, unofferedToolchains, type Toolchains } from './toolchains';

const BWRAP = process.env.NIGHTSHIFT_BWRAP || 'bwrap';
const KILL_GRACE_MS = 2000;
/** PATH of the wrapper that execs prlimit and bwrap (the sandbox gets its own). */
const WRAPPER_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
/**
 * The wrapper's file descriptor carrying the sandbox's environment: a pipe bwrap reads more arguments from (`--args`).
 */
const ENV_FD = 3;

// Read-only system paths. Not `/` (its unix sockets stay connectable), not all of /etc (it can hold secrets).
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
const ETC_ENTRIES = [
  'hosts',
  'nsswitch.conf',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'localtime',
  'alternatives',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'mime.types',
  'gitconfig',
];

/** The sandbox sees the host's /etc/ssl: the CA bundle is there when the host has it. */
const HOST_ENV = baseEnv(existsSync(CA_BUNDLE));

// Inside, the run is an ordinary user without capabilities; the user namespace maps it to the worker's user.
const PASSWD = `sandbox:x:${UID}:${UID}:Nightshift sandbox:${HOME_DIR}:/bin/sh\n`;
const GROUP = `sandbox:x:${UID}:\n`;

/** Process groups running per run, across sandbox instances, so a reopened sandbox can still tear them down. */
const running = new Map<string, Set<ChildProcess>>();

/**
 * bubblewrap sandboxes: each exec is a fresh `bwrap` with new namespaces (no network), a cleared environment,
 * the system read-only and only the run's workspace, HOME and /tmp writable. Stateless between execs, so a new
 * worker process can reopen a run's sandbox from its directory.
 * Limits: wall time (here), memory, processes and CPU (a per-run cgroup), file size and open files (rlimits).
 * Without writable cgroups the driver refuses to run unless NIGHTSHIFT_CGROUPS=off says to go on without them.
 */
export class BwrapDriver implements SandboxDriver {
  readonly name = 'bwrap';
  private cgroups?: Promise<string | null>;

  /**
   * `readOnly`: host directories every sandbox sees read-only (the agent CLIs). `toolchains`: the ones this worker
   * offers (NIGHTSHIFT_TOOLCHAINS), each seen read-only at its own path by a sandbox that asks for it.
   */
  constructor(
    private readonly readOnly: { host: string; target: string }[] = [],
    private readonly toolchains: Toolchains = {},
  ) {}

  /** None: a bwrap sandbox sees the host's system read-only (the worker's own files, not an image). */
  async image(): Promise<undefined> {
    return undefined;
  }

  async open(opts: SandboxOptions): Promise<Sandbox> {
    const unoffered = unofferedToolchains(opts.toolchains ?? [], this.toolchains);
    if (unoffered.length)
      throw new Error(`this worker offers no toolchain ${unoffered.join(', ')} (NIGHTSHIFT_TOOLCHAINS)`);
    for (const dir of [...SANDBOX_DIRS, 'etc']) await fs.mkdir(path.join(opts.root, dir), { recursive: true });
    await fs.writeFile(path.join(opts.root, 'etc', 'passwd'), PASSWD);
    await fs.writeFile(path.join(opts.root, 'etc', 'group'), GROUP);
    const useCgroups = process.env.NIGHTSHIFT_CGROUPS !== 'off';
    if (useCgroups) {
      const why = await (this.cgroups ??= cgroupsUnavailable());
      if (why)
        throw new Error(
          `sandbox limits need cgroups: ${why} (run the worker as root, or set NIGHTSHIFT_CGROUPS=off to run without limits)`,
        );
    }
    return new BwrapSandbox(
      opts,
      useCgroups ? new RunCgroup(path.basename(path.dirname(opts.root)), opts.runId) : undefined,
      this.readOnly,
      this.toolchains,
    );
  }
}

export class BwrapSandbox implements Sandbox {
  readonly runId: string;
  readonly workspace: string;

  private limitsApplied?: Promise<void>;

  constructor(
    private readonly opts: SandboxOptions,
    private readonly cgroup?: RunCgroup,
    private readonly readOnly: { host: string; target: string }[] = [],
    private readonly toolchains: Toolchains = {},
  ) {
    this.runId = opts.runId;
    this.workspace = path.join(opts.root, 'workspace');
  }

  /** bwrap's arguments: no environment in them, it comes through ENV_FD (setenvArgs). */
  args(linked = false): string[] {
    const args = [
      '--unshare-all',
      '--unshare-user',
      '--disable-userns',
      '--uid',
      String(UID),
      '--gid',
      String(UID),
      '--cap-drop',
      'ALL',
      '--die-with-parent',
      '--new-session',
      '--clearenv',
      '--proc',
      '/proc',
      '--dev',
      '/dev',
    ];
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
    args.push(
      '--ro-bind',
      path.join(root, 'etc', 'passwd'),
      '/etc/passwd',
      '--ro-bind',
      path.join(root, 'etc', 'group'),
      '/etc/group',
    );
    args.push('--bind', path.join(root, 'workspace'), WORKSPACE_DIR);
    args.push('--bind', path.join(root, 'home'), HOME_DIR);
    args.push('--bind', path.join(root, 'tmp'), '/tmp');
    args.push('--ro-bind', path.join(root, 'meta'), META_DIR);
    const objects = runGitObjects(root);
    if (objects) args.push('--ro-bind', objects, GIT_OBJECTS_DIR);
    for (const { host, target } of this.readOnly) args.push('--ro-bind', host, target);
    // The run's toolchains, read-only at their own paths (config/toolchains.ts keeps them clear of every place above).
    for (const name of this.opts.toolchains ?? []) args.push('--ro-bind', this.toolchains[name], this.toolchains[name]);
    if (linked) args.push('--ro-bind', path.join(root, 'net'), NET_DIR);
    // The root bwrap builds is a tmpfs: make it read-only too, after every mount point exists.
    args.push('--remount-ro', '/');
    args.push('--args', String(ENV_FD));
    args.push('--chdir', WORKSPACE_DIR);
    return args;
  }

  /**
   * The command line: a shell that joins the run's cgroups and sets rlimits, then becomes bwrap, so every process
   * of the sandbox starts inside the limits (no window between spawn and joining). With an allowlist, the command
   * runs under the bridge to the worker (egress proxy, model gateway). The environment is not on it: bwrap reads
   * its --setenv arguments from ENV_FD, so they are in no process's cmdline (nor environ: bwrap sets them in memory).
   */
  private commandLine(opts: ExecOptions, link: WorkerLink | undefined, nonce: string): string[] {
    const { limits } = this.opts;
    const procs = this.cgroup?.procsFiles() ?? [];
    const args = this.args(Boolean(link));
    const cmd = link?.cmd ?? opts.cmd;
    return [
      // A failure to join says so with a nonce the sandbox cannot see (its own pid namespace), so a command's exit 125
      // is not mistaken for it.
      '/bin/sh',
      '-c',
      'm=$1; n=$2; shift 2; while [ "$n" -gt 0 ]; do echo $$ > "$1" || { echo "$m" >&2; exit 125; }; shift; n=$((n-1)); done; exec "$@"',
      'sh',
      nonce,
      String(procs.length),
      ...procs,
      'prlimit',
      `--nofile=${limits.openFiles}:${limits.openFiles}`,
      `--fsize=${limits.fileSizeBytes}:${limits.fileSizeBytes}`,
      '--',
      BWRAP,
      ...args,
      '--',
      ...cmd,
    ];
  }

  async exec(opts: ExecOptions): Promise<ExecResult> {
    if (opts.signal?.aborted) return cancelledBeforeStart();
    // Checked up front: after spawning, a missing tool's exit 127 is indistinguishable from the command's own.
    if (!(await executable(BWRAP)))
      throw new Error(`bubblewrap (bwrap) is not installed: apt-get install bubblewrap (looked for ${BWRAP})`);
    if (!(await executable('prlimit'))) throw new Error('prlimit is not installed: apt-get install util-linux');
    // Once per sandbox object: later execs of the run find the cgroup as it was set.
    this.limitsApplied ??= this.cgroup?.apply(this.opts.limits);
    await this.limitsApplied;
    const cgroup = this.cgroup;
    return withCgroupLimits(this.opts.limits, cgroup && (() => cgroup.counters()), async () => {
      const link = await linkToWorker(this.opts.root, this.opts, opts);
      return this.run(opts, link).finally(() => link?.close());
    });
  }

  private run(opts: ExecOptions, link: WorkerLink | undefined): Promise<ExecResult> {
    const started = Date.now();
    const nonce = `nightshift-cgroup-join-failed-${randomBytes(8).toString('hex')}`;
    const [bin, ...argv] = this.commandLine(opts, link, nonce);
    const PATH = toolchainPath(this.opts.toolchains ?? [], this.toolchains);
    const env = setenvArgs({ ...HOST_ENV, PATH, ...opts.env, ...link?.env });
    return new Promise((resolve, reject) => {
      const child = spawn(bin, argv, {
        detached: true, // its own process group, so a kill reaches grandchildren too
        stdio: ['ignore', 'pipe', 'pipe', 'pipe'], // ENV_FD: the sandbox's environment
        env: { PATH: WRAPPER_PATH }, // for the wrapper only: bwrap clears it for the sandbox
      });
      // Read by bwrap to its end; a wrapper that fails before that closes it unread (EPIPE, reported by its exit).
      const envPipe = child.stdio[ENV_FD] as Writable;
      envPipe.on('error', () => undefined);
      envPipe.end(env);
      const group = running.get(this.runId) ?? new Set<ChildProcess>();
      running.set(this.runId, group);
      group.add(child);

      // The group reaches the wrapper and bwrap; the sandbox's own processes are in a new session, and die with bwrap
      // only once it has set up --die-with-parent: a stop that lands during setup would leave them running, so the
      // run's cgroup (which every process of the sandbox joined before it started) is emptied too, and the command
      // only ends once it is empty: the run's next command joins the same cgroup and must not meet this kill.
      let emptying: Promise<void> | undefined;
      const cgroup = this.cgroup;
      const supervisor = new ExecSupervisor(
        opts,
        this.opts,
        () => {
          killGroup(child);
          emptying ??= cgroup?.killAll();
        },
        started,
        cgroup && (() => cgroup.counters()),
      );
      supervisor.forwardOutput(child.stdout!, child.stderr!);

      const finish = () => {
        supervisor.end();
        group.delete(child);
        if (group.size === 0) running.delete(this.runId);
      };
      child.on('error', (err: NodeJS.ErrnoException) => {
        finish();
        reject(err);
      });
      let stderrHead = '';
      child.stderr!.on('data', (chunk: string) => {
        if (stderrHead.length < 2000) stderrHead += chunk;
      });
      child.on('close', (code) => {
        finish();
        // Whatever the command left running in its group dies with it.
        killGroup(child, 'SIGKILL');
        if (code === 125 && stderrHead.includes(nonce)) {
          reject(new Error(`could not join the run's cgroups: ${stderrHead.trim()}`));
          return;
        }
        const result = supervisor.result(code);
        void Promise.resolve(emptying).then(() => resolve(result));
      });
    });
  }

  async teardown(): Promise<void> {
    await this.cgroup?.killAll();
    const group = running.get(this.runId);
    if (group) {
      await Promise.all(
        [...group].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('close', () => resolve());
              killGroup(child);
            }),
        ),
      );
    }
    await this.cgroup?.remove();
    await unmountUnder(this.opts.root);
    await fs.rm(this.opts.root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

/** `--setenv NAME VALUE` for each variable, NUL-separated, as `bwrap --args FD` reads them. */
function setenvArgs(env: Record<string, string>): string {
  return envEntries(env)
    .map(([name, value]) => `--setenv\0${name}\0${value}\0`)
    .join('');
}

const found = new Map<string, boolean>();

/** Whether the wrapper can run `tool` (a path, or a name on WRAPPER_PATH). Only a success is remembered. */
async function executable(tool: string): Promise<boolean> {
  if (found.get(tool)) return true;
  const ok = await lookUp(tool);
  if (ok) found.set(tool, true);
  return ok;
}

async function lookUp(tool: string): Promise<boolean> {
  const candidates = tool.includes('/') ? [tool] : WRAPPER_PATH.split(':').map((dir) => path.join(dir, tool));
  for (const candidate of candidates) {
    if (
      await fs.access(candidate, fsConstants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
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
