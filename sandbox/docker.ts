import Docker from 'dockerode';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { runHostTool } from '../processes/hostTools';
import { cgroupDirsOf, countersIn, pidsCurrent, type CgroupCounters } from './cgroup';
import { unmountUnder } from './overlay';
import {
  baseEnv,
  envScript,
  GIT_OBJECTS_DIR,
  HOME_DIR,
  linkToWorker,
  META_DIR,
  NET_DIR,
  runGitObjects,
  SANDBOX_DIRS,
  SANDBOX_UID,
  withEnvLoaded,
  WORKSPACE_DIR,
  writableDirs,
  type WorkerLink,
} from './layout';
import seccompProfile from './seccomp.json';
import type { ExecOptions, ExecResult, ImageWanted, Sandbox, SandboxDriver, SandboxOptions } from './sandbox';
import type { SandboxImage } from '../contracts/run';
import { imageRef } from '../config/images';
import { checkImage, TOOLCHAINS_LABEL, type ImageCheck } from './images';
import { cancelledBeforeStart, ExecSupervisor, withCgroupLimits } from './supervisor';

export interface DockerDriverOptions {
  /**
   * `unix:///path/to.sock` (the default is /var/run/docker.sock). The engine must run on the worker's host: the
   * workspace is a bind mount.
   */
  host?: string;
  /** The default image: a spec's sandbox without `image` starts from it. */
  image: string;
  /** The other images a spec may name (`sandbox.image`; NIGHTSHIFT_DOCKER_IMAGES), each as imageRef() writes it. */
  images?: string[];
  /** Where every sandbox finds the agent CLIs (agents/cli.ts; bwrap binds them there): an image must hold them. */
  cliPaths?: string[];
  /**
   * This worker's name and NIGHTSHIFT_HOME, on its containers' labels, so a later worker of the same home can sweep
   * them when it is gone.
   */
  worker: string;
  home: string;
}

const LABEL_RUN = 'nightshift.run';
const LABEL_WORKER = 'nightshift.worker';
const LABEL_HOST = 'nightshift.host';
const LABEL_HOME = 'nightshift.home';
const USER = `${SANDBOX_UID}:${SANDBOX_UID}`;
/** The image has the CA bundle (the host's, or Debian's from the Dockerfile); its PATH, when it sets one (ENV). */
const imageEnv = (pathVar: string) => ({ ...baseEnv(true), PATH: pathVar });
/** Lowered: the engine may lack CAP_SYS_RESOURCE to raise them (docs/reference.md). */
const NPROC = { Name: 'nproc', Soft: 1024, Hard: 1024 };

/**
 * seccomp: the containers/common default profile, except that `unshare` and `clone` with namespace flags are
 * refused and `clone3` answers ENOSYS (its flags cannot be inspected; libc falls back to clone). Podman's default
 * lets a container create user namespaces. Docker takes the profile inline; Podman's compatible API, a file path.
 */
async function seccompOption(docker: Docker): Promise<string> {
  const version = await docker.version();
  const podman = (version.Components ?? []).some((c) => /podman/i.test(c.Name));
  return podman ? `seccomp=${path.join(__dirname, 'seccomp.json')}` : `seccomp=${JSON.stringify(seccompProfile)}`;
}

/** The Docker client for a DOCKER_HOST-style address (only unix sockets: the engine must share the worker's disk). */
export function dockerClient(host = 'unix:///var/run/docker.sock'): Docker {
  if (!host.startsWith('unix://'))
    throw new Error(`DOCKER_HOST must be a unix socket on the worker's machine (unix:///path), got "${host}"`);
  return new Docker({ socketPath: host.slice('unix://'.length) });
}

/**
 * Sandboxes as containers on a Docker-API engine (Docker, or Podman's compatible service): one long-lived container
 * per run, created at its first exec, with the workspace, HOME and tmp bound from the run's directory on the
 * worker. Hardened: no capabilities, no-new-privileges, a non-root user, a read-only root, no network (egress goes
 * through the worker's proxy socket), and the run's memory, CPU, process and file limits.
 */
export class DockerDriver implements SandboxDriver {
  readonly name = 'docker';
  readonly docker: Docker;
  private seccomp?: Promise<string>;

  constructor(private readonly options: DockerDriverOptions) {
    this.docker = dockerClient(options.host);
  }

  async open(opts: SandboxOptions): Promise<Sandbox> {
    for (const dir of SANDBOX_DIRS) await fs.mkdir(path.join(opts.root, dir), { recursive: true });
    this.seccomp ??= seccompOption(this.docker);
    this.seccomp.catch(() => (this.seccomp = undefined));
    // Chosen, and its PATH read, when the sandbox's container is made, not here: a teardown opens the sandbox too.
    const image = async () => {
      const name = await this.imageName(opts);
      return { name, path: (await this.check(name)).path };
    };
    return new DockerSandbox(this.docker, this.options, opts, this.seccomp, image);
  }

  /**
   * The image a run's sandboxes start from: the one it names; else, when it asks for toolchains, the first allowed
   * image (the default first, then NIGHTSHIFT_DOCKER_IMAGES' order) offered and labelled with all of them; else the
   * default. refusal() says why a run may not have it.
   */
  async imageName({ image, toolchains = [] }: ImageWanted): Promise<string> {
    if (image) return image;
    if (!toolchains.length) return this.options.image;
    for (const name of this.allowedImages()) {
      const check = await this.check(name);
      if (!check.missing.length && toolchains.every((t) => check.toolchains.includes(t))) return name;
    }
    return this.options.image;
  }

  /** The image a run's sandboxes start from (imageName()), by name and id. */
  async image(wanted: ImageWanted): Promise<SandboxImage> {
    const image = await this.imageName(wanted);
    const { Id } = await this.docker.getImage(image).inspect();
    return { name: image, digest: Id.startsWith('sha256:') ? Id : `sha256:${Id}` };
  }

  /** The default image and the allowed ones, by imageRef(). */
  allowedImages(): string[] {
    return [...new Set([imageRef(this.options.image), ...(this.options.images ?? []).map(imageRef)])];
  }

  /** The image contract (sandbox/images.ts) for `name`, as the image under that name now is; cached per image id. */
  check(name: string): Promise<ImageCheck> {
    return checkImage(this.docker, name, {
      cliPaths: this.options.cliPaths ?? [],
      ulimits: [NPROC, { Name: 'nofile', Soft: 1024, Hard: 1024 }],
    });
  }

  /** Every image this worker may offer, checked (the worker's log and `doctor` name what each lacks). */
  checkImages(): Promise<ImageCheck[]> {
    return Promise.all(this.allowedImages().map((name) => this.check(name)));
  }

  /**
   * Why this worker does not start a sandbox from the image a run asks: not on its list, missing a piece of the
   * contract, or without a toolchain the run asks for; undefined when it does. Asked at provision: admission checked
   * the list on the server, this is the worker's own.
   */
  async refusal(wanted: ImageWanted): Promise<string | undefined> {
    const image = await this.imageName(wanted);
    const allowed = this.allowedImages();
    if (!allowed.includes(imageRef(image)))
      return `image ${image} is not offered by this worker (NIGHTSHIFT_DOCKER_IMAGES allows: ${allowed.join(', ')})`;
    const { missing, toolchains } = await this.check(image);
    if (missing.length)
      return `image ${image} is not offered by this worker: ${missing.join(', ')} (docs/images.md, "The image contract")`;
    const lacking = (wanted.toolchains ?? []).filter((t) => !toolchains.includes(t));
    if (!lacking.length) return undefined;
    const held = async (name: string) => `${name} (${(await this.check(name)).toolchains.join(', ') || 'none'})`;
    const which = wanted.image
      ? `image ${image} holds no toolchain ${lacking.join(', ')} (its ${TOOLCHAINS_LABEL}: ${toolchains.join(', ') || 'none'})`
      : `no image this worker offers holds the toolchains ${wanted.toolchains!.join(', ')} (images: ${(await Promise.all(allowed.map(held))).join('; ')})`;
    return `${which}: build one with \`nightshift image build --toolchain ${lacking[0]}=…\` and allow it in NIGHTSHIFT_DOCKER_IMAGES (docs/images.md)`;
  }

  /** What is wrong with the engine or the image, or null when sandboxes can start. */
  async unavailable(): Promise<string | null> {
    try {
      await this.docker.ping();
    } catch (err) {
      return `no Docker API at ${this.options.host ?? 'unix:///var/run/docker.sock'}: ${(err as Error).message}`;
    }
    try {
      await this.docker.getImage(this.options.image).inspect();
    } catch {
      return `image ${this.options.image} is missing (build it: docker build -t ${this.options.image} -f sandbox/image/Dockerfile . from the project, or scripts/build-sandbox-image.sh with Podman)`;
    }
    return null;
  }

  /**
   * Remove the sandbox containers of this host and home whose worker is gone (`isLive` says which workers still run).
   */
  async sweep(isLive: (worker: string) => boolean): Promise<string[]> {
    // Only this home's: another Nightshift on the machine (another NIGHTSHIFT_HOME) has workers this one cannot see.
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_HOST}=${os.hostname()}`, `${LABEL_HOME}=${this.options.home}`] },
    });
    const removed: string[] = [];
    for (const c of containers) {
      const worker = c.Labels[LABEL_WORKER];
      if (!worker || isLive(worker)) continue;
      await this.docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
      removed.push(c.Labels[LABEL_RUN] ?? c.Id);
    }
    return removed;
  }
}

export class DockerSandbox implements Sandbox {
  readonly runId: string;
  readonly workspace: string;
  private readonly name: string;
  private killing?: Promise<void>;
  private env?: Record<string, string>;
  private image?: string;

  constructor(
    private readonly docker: Docker,
    private readonly driver: DockerDriverOptions,
    private readonly opts: SandboxOptions,
    private readonly seccomp: Promise<string>,
    private readonly chooseImage: () => Promise<{ name: string; path: string }>,
  ) {
    this.runId = opts.runId;
    this.workspace = path.join(opts.root, 'workspace');
    // One container per run and worker; names allow only [A-Za-z0-9_.-].
    const id = createHash('sha256').update(`${driver.worker}\0${opts.runId}\0${opts.root}`).digest('hex').slice(0, 16);
    this.name = `nightshift-${opts.runId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 60)}-${id}`;
  }

  /** The run's container, running; created on first use. */
  private async container(): Promise<Docker.Container> {
    if (!this.image || !this.env) {
      const chosen = await this.chooseImage();
      [this.image, this.env] = [chosen.name, imageEnv(chosen.path)];
    }
    const container = this.docker.getContainer(this.name);
    const info = await container.inspect().catch((err: { statusCode?: number }) => {
      if (err.statusCode === 404) return undefined;
      throw err;
    });
    if (!info) return this.create();
    if (!info.State.Running) await container.start();
    return container;
  }

  private async create(): Promise<Docker.Container> {
    const { root, limits } = this.opts;
    const binds = [
      `${this.workspace}:${WORKSPACE_DIR}:rw`,
      `${path.join(root, 'home')}:${HOME_DIR}:rw`,
      `${path.join(root, 'tmp')}:/tmp:rw`,
      `${path.join(root, 'net')}:${NET_DIR}:ro`,
      `${path.join(root, 'meta')}:${META_DIR}:ro`,
    ];
    const objects = runGitObjects(root);
    if (objects) binds.push(`${objects}:${GIT_OBJECTS_DIR}:ro`);
    const container = await this.docker.createContainer({
      name: this.name,
      Image: this.image,
      // PID 1 only keeps the container up; every command is an exec.
      Cmd: ['sleep', 'infinity'],
      User: USER,
      WorkingDir: WORKSPACE_DIR,
      Env: Object.entries(this.env!).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [LABEL_RUN]: this.runId,
        [LABEL_WORKER]: this.driver.worker,
        [LABEL_HOST]: os.hostname(),
        [LABEL_HOME]: this.driver.home,
      },
      NetworkDisabled: true,
      HostConfig: {
        Binds: binds,
        NetworkMode: 'none',
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges', await this.seccomp],
        Privileged: false,
        ReadonlyRootfs: true,
        IpcMode: 'private',
        PidsLimit: limits.pids,
        Memory: limits.memoryBytes,
        MemorySwap: limits.memoryBytes,
        NanoCpus: Math.round(limits.cpus * 1e9),
        // nproc counts per user across the host; the per-run process limit is PidsLimit.
        Ulimits: [
          { Name: 'nofile', Soft: limits.openFiles, Hard: limits.openFiles },
          NPROC,
          { Name: 'fsize', Soft: limits.fileSizeBytes, Hard: limits.fileSizeBytes },
        ],
      },
    });
    await container.start();
    return container;
  }

  async exec(opts: ExecOptions): Promise<ExecResult> {
    if (opts.signal?.aborted) return cancelledBeforeStart();
    // The container's user is not the worker's: hand it the files the worker wrote since the last exec.
    await chownTree(writableDirs(this.opts.root));
    await this.killing;
    const container = await this.container();
    const cgroups = await this.cgroups(container);
    const link = await linkToWorker(this.opts.root, this.opts, opts);
    try {
      const counters = cgroups && (() => countersIn(cgroups.memory, cgroups.pids));
      const result = await withCgroupLimits(this.opts.limits, counters, () =>
        this.run(container, opts, link, counters),
      );
      if (cgroups) await this.killLeftovers(container, cgroups.pids);
      return result;
    } finally {
      await link?.close();
    }
  }

  /**
   * Whatever a command left running dies with it, as on bwrap: when more than the container's own PID 1 remains,
   * the container is killed (an exec could not do it: a fork bomb leaves no room for one more process).
   */
  private async killLeftovers(container: Docker.Container, pidsDir: string): Promise<void> {
    for (let i = 0; i < 5; i++) {
      if ((await pidsCurrent(pidsDir)) <= 1) return;
      await new Promise((r) => setTimeout(r, 20)); // an exec's last process may still be on its way out
    }
    await this.kill(container);
  }

  /**
   * SIGKILL the container and wait until the engine says it has stopped: until then it may still report itself
   * running, and an exec started in it would die with it. The next exec waits for a kill in progress.
   */
  private kill(container: Docker.Container): Promise<void> {
    this.killing = container
      .kill({ signal: 'SIGKILL' })
      .then(() => container.wait({ condition: 'not-running' }))
      .then(
        () => undefined,
        () => undefined,
      );
    return this.killing;
  }

  /**
   * The exec's environment goes in a file in the run's `meta/` (read-only inside), loaded by a shell before the
   * command, and deleted when it ends. Not in the exec's Env: Podman keeps that in its state database
   * (/var/lib/containers/storage/libpod/bolt_state.db) long after the container is gone.
   */
  private async run(
    container: Docker.Container,
    opts: ExecOptions,
    link: WorkerLink | undefined,
    counters?: () => Promise<CgroupCounters>,
  ): Promise<ExecResult> {
    const name = `.env-${randomBytes(8).toString('hex')}`;
    const file = path.join(this.opts.root, 'meta', name);
    await fs.writeFile(file, envScript({ ...this.env, ...opts.env, ...link?.env }), { mode: 0o400, flag: 'wx' });
    try {
      await fs.chown(file, SANDBOX_UID, SANDBOX_UID);
      return await this.runLoaded(
        container,
        opts,
        withEnvLoaded(link?.cmd ?? opts.cmd, `${META_DIR}/${name}`),
        counters,
      );
    } finally {
      await fs.rm(file, { force: true });
    }
  }

  private async runLoaded(
    container: Docker.Container,
    opts: ExecOptions,
    cmd: string[],
    counters?: () => Promise<CgroupCounters>,
  ): Promise<ExecResult> {
    const started = Date.now();
    const exec = await container.exec({
      Cmd: cmd,
      User: USER,
      WorkingDir: WORKSPACE_DIR,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    // Killing the container is the one kill that reaches every process of the run; the next exec restarts it.
    const supervisor = new ExecSupervisor(opts, this.opts, () => void this.kill(container), started, counters);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    supervisor.forwardOutput(stdout, stderr);
    this.docker.modem.demuxStream(stream, stdout, stderr);
    try {
      await new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', reject);
      });
    } finally {
      supervisor.end();
    }
    // Returned only once the container is down, so whatever runs next (this run's next stage) finds it stopped.
    if (supervisor.stopped) await this.killing;
    return supervisor.result(supervisor.stopped ? null : await this.exitCode(container, exec));
  }

  /** The exec's exit code; null when the container died under it (killed, like a signal, as bwrap reports it). */
  private async exitCode(container: Docker.Container, exec: Docker.Exec): Promise<number | null> {
    try {
      const [result, info] = await Promise.all([exec.inspect(), container.inspect()]);
      return info.State.Running ? (result.ExitCode ?? null) : null;
    } catch {
      return null; // removed by a teardown
    }
  }

  /** The container's memory and pids cgroups on this host, found through its PID 1. */
  private async cgroups(container: Docker.Container): Promise<{ memory: string; pids: string } | undefined> {
    const pid = (await container.inspect()).State.Pid;
    if (!pid) return undefined;
    return cgroupDirsOf(await fs.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => ''));
  }

  async teardown(): Promise<void> {
    await this.docker
      .getContainer(this.name)
      .remove({ force: true })
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
    await unmountUnder(this.opts.root);
    await fs.rm(this.opts.root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

/** Give the sandbox's user the files under `dirs` that are not its own yet. */
async function chownTree(dirs: string[]): Promise<void> {
  const uid = String(SANDBOX_UID);
  // find … ! -uid: only what changed hands, so a large untouched workspace costs one walk and no writes. -xdev: an
  // environment's overlay (sandbox/overlay.ts) was the sandbox user's when it was made; walking it would copy it up.
  const changedHands = ['(', '!', '-uid', uid, '-o', '!', '-gid', uid, ')'];
  await runHostTool('find', [
    ...dirs,
    '-xdev',
    ...changedHands,
    '-exec',
    'chown',
    '-h',
    `${uid}:${uid}`,
    '{}',
    '+',
  ]).catch((err: Error) => {
    throw new Error(`cannot hand the workspace to the sandbox user: ${err.message}`);
  });
}
