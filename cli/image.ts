// `nightshift image build`: a docker-driver image FROM the sandbox's base image with toolchains in it (docs/images.md):
// host directories copied in, Debian packages installed by the base's own apt; built through the engine's Docker API
// (dockerode, as the driver talks to it), no image pulled.
import type Docker from 'dockerode';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, promises as fs, realpathSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../config';
import { hostToolEnv } from '../processes/hostTools';
import { imageRef } from '../config/images';
import { dockerClient } from '../sandbox/docker';
import { TOOLCHAINS_LABEL } from '../sandbox/images';
import { CliError } from './client';

/** Where a host toolchain lands in the image: `/opt/toolchains/<name>`, its `bin` first on PATH. */
export const TOOLCHAIN_ROOT = '/opt/toolchains';
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEBIAN_PACKAGE = /^[a-z0-9][a-z0-9+.-]{0,99}$/;

/** A toolchain for the image: a host directory (`dir`) or Debian packages (`packages`). */
export interface Toolchain {
  name: string;
  /** The host directory (its real path), holding `bin/`. */
  dir?: string;
  /** Debian packages the base image's apt installs (their tools land in /usr/bin, already on PATH). */
  packages?: string[];
  /** Its first line of `bin/<name> version` (or `--version`), when it says one. */
  version?: string;
}

/**
 * `go=/usr/local/go` or `python=debian:python3-pytest,python3-venv` → the toolchain, checked: a plain name, and an
 * absolute directory with a `bin/` or Debian package names.
 */
export function parseToolchain(arg: string): Toolchain {
  const m = /^([a-z][a-z0-9_-]{0,31})=(.*)$/.exec(arg);
  if (!m || !(m[2].startsWith('/') || m[2].startsWith('debian:')))
    throw new CliError(
      `--toolchain ${arg}: expected NAME=/absolute/dir or NAME=debian:PACKAGE[,PACKAGE] (e.g. go=/usr/local/go)`,
      2,
    );
  const [, name, given] = m;
  if (given.startsWith('debian:')) {
    const packages = given.slice('debian:'.length).split(',');
    const bad = packages.find((p) => !DEBIAN_PACKAGE.test(p));
    if (bad !== undefined) throw new CliError(`--toolchain ${arg}: "${bad}" is not a Debian package name`, 2);
    return { name, packages };
  }
  if (!existsSync(given) || !statSync(given).isDirectory())
    throw new CliError(`--toolchain ${arg}: ${given} is not a directory`, 2);
  const dir = realpathSync(given);
  if (!/^\/[A-Za-z0-9._/+-]+$/.test(dir))
    throw new CliError(`--toolchain ${arg}: ${dir} has characters an image path cannot take here`, 2);
  if (dir === '/' || !existsSync(path.join(dir, 'bin')))
    throw new CliError(`--toolchain ${arg}: ${dir} has no bin/ directory to put on PATH`, 2);
  return { name, dir, version: toolchainVersion(path.join(dir, 'bin', name)) };
}

function toolchainVersion(bin: string): string | undefined {
  for (const args of [['version'], ['--version']]) {
    const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 10_000, env: hostToolEnv() });
    const line = (r.stdout || '').split('\n')[0].trim();
    if (r.status === 0 && line) return line.slice(0, 200);
  }
  return undefined;
}

/** The base image as the build starts FROM it: its name, id, PATH and user (`USER`, restored after apt). */
export interface BaseImage {
  name: string;
  id: string;
  path: string;
  user?: string;
}

/** What a toolchain's label says: its directory (and version), or its packages. */
function toolchainLabel(t: Toolchain): string {
  if (t.packages) return `debian: ${t.packages.join(' ')}`;
  return t.version ? `${t.dir} (${t.version})` : t.dir!;
}

/**
 * The Containerfile: FROM the base by id (local: nothing to pull), Debian packages installed as root with the base's
 * apt, each directory copied, its bin on PATH, labels.
 */
export function containerfile(base: BaseImage, toolchains: Toolchain[]): string {
  const copied = toolchains.filter((t) => t.dir);
  const packages = toolchains.flatMap((t) => t.packages ?? []);
  const bins = copied.map((t) => `${TOOLCHAIN_ROOT}/${t.name}/bin`);
  const labels: Record<string, string> = {
    'nightshift.base': `${base.name}@${base.id}`,
    [TOOLCHAINS_LABEL]: toolchains.map((t) => t.name).join(','),
  };
  for (const t of toolchains) labels[`nightshift.toolchain.${t.name}`] = toolchainLabel(t);
  const apt = packages.length
    ? [
        'USER root',
        `RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${packages.join(' ')} && rm -rf /var/lib/apt/lists/*`,
        `USER ${base.user || 'root'}`,
      ]
    : [];
  return [
    // The id's hex alone: `sha256:…` would read as an image named sha256 with a tag.
    `FROM ${base.id.replace(/^sha256:/, '')}`,
    ...apt,
    ...copied.map((t) => `COPY toolchains/${t.name} ${TOOLCHAIN_ROOT}/${t.name}`),
    `ENV PATH=${JSON.stringify([...bins, base.path].join(':'))}`,
    ...Object.entries(labels).map(([k, v]) => `LABEL ${k}=${JSON.stringify(v)}`),
    '',
  ].join('\n');
}

/**
 * The build context as a tar stream (GNU tar): the Containerfile, and each toolchain's directory renamed to
 * `toolchains/<name>` (links kept as links, every file root's).
 */
function contextTar(dir: string, toolchains: Toolchain[]): { stream: NodeJS.ReadableStream; done: Promise<string> } {
  const dirs = toolchains.flatMap((t) => (t.dir ? [{ name: t.name, dir: t.dir }] : []));
  const transforms = dirs.flatMap((t) => {
    const from = t.dir.slice(1).replace(/\./g, '\\.');
    return ['--transform', `s,^${from}/,toolchains/${t.name}/,S`, '--transform', `s,^${from}$,toolchains/${t.name},S`];
  });
  const tar = spawn(
    'tar',
    [
      '-c',
      '-f',
      '-',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      ...transforms,
      '-C',
      dir,
      'Containerfile',
      '-C',
      '/',
      ...dirs.map((t) => t.dir.slice(1)),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: hostToolEnv() },
  );
  let stderr = '';
  tar.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // What tar could not read would be missing from the image: its failure is the build's.
  const done = new Promise<string>((resolve) => {
    tar.on('error', (err) => resolve(err.message));
    tar.on('close', (code) =>
      resolve(code === 0 ? '' : stderr.trim().split('\n').slice(-2).join(' ') || `exit ${code}`),
    );
  });
  return { stream: tar.stdout, done };
}

/** The build's progress to `say`; rejects with the engine's error. */
function follow(docker: Docker, stream: NodeJS.ReadableStream, say: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, events: { error?: string; errorDetail?: { message?: string } }[]) => {
        const failed = err?.message ?? events.find((e) => e.error)?.error;
        if (failed) reject(new CliError(`image build failed: ${failed.trim()}`, 1));
        else resolve();
      },
      (event: { stream?: string }) => {
        for (const line of (event.stream ?? '').split('\n')) if (line.trim()) say(line.trimEnd());
      },
    );
  });
}

export interface ImageBuildOptions {
  toolchain: string[];
  tag?: string;
  /** Default: the server's default image (NIGHTSHIFT_DOCKER_IMAGE). */
  base?: string;
}

/** `nightshift image build --toolchain go=/usr/local/go [--tag T] [--base B]`. */
export async function imageBuild(opts: ImageBuildOptions, say: (line: string) => void): Promise<string> {
  const config = loadConfig();
  const toolchains = opts.toolchain.map(parseToolchain);
  if (toolchains.length === 0) throw new CliError('name at least one --toolchain NAME=/dir', 2);
  if (new Set(toolchains.map((t) => t.name)).size < toolchains.length)
    throw new CliError('each --toolchain needs a name of its own', 2);
  for (const a of toolchains)
    for (const b of toolchains)
      if (a !== b && a.dir && b.dir && (a.dir === b.dir || b.dir.startsWith(`${a.dir}/`)))
        throw new CliError(`--toolchain ${b.name}: ${b.dir} is inside ${a.name}'s ${a.dir}`, 2);
  const host = config.dockerHost ?? 'unix:///var/run/docker.sock';
  let docker: Docker;
  try {
    docker = dockerClient(host);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  await docker.ping().catch((err: Error) => {
    throw new CliError(`no Docker API at ${host} (${err.message.split('\n')[0]}): set DOCKER_HOST`, 2);
  });
  const baseName = opts.base ?? config.dockerImage;
  const info = await docker
    .getImage(baseName)
    .inspect()
    .catch((err: Error) => {
      throw new CliError(
        `the base image ${baseName} is not on the engine at ${host} (${err.message.split('\n')[0]}): build it first (scripts/build-sandbox-image.sh)`,
        2,
      );
    });
  const basePath = info.Config?.Env?.find((e) => e.startsWith('PATH='))?.slice(5) || BASE_PATH;
  const tag = imageRef(opts.tag ?? `nightshift-sandbox-${toolchains.map((t) => t.name).join('-')}`);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nightshift-image-'));
  try {
    await fs.writeFile(
      path.join(dir, 'Containerfile'),
      containerfile({ name: baseName, id: info.Id, path: basePath, user: info.Config?.User }, toolchains),
    );
    say(
      `image ${tag}: FROM ${baseName} (${info.Id.slice(0, 19)}), toolchains ${toolchains.map((t) => `${t.name}=${t.dir ?? `debian:${t.packages!.join(',')}`}`).join(', ')}`,
    );
    // pull: false, and the base named by its id: the engine has it, so nothing is fetched (Podman: pull if missing).
    const context = contextTar(dir, toolchains);
    const stream = await docker.buildImage(context.stream, {
      t: tag,
      dockerfile: 'Containerfile',
      pull: false,
      rm: true,
      forcerm: true,
    });
    await follow(docker, stream, say);
    const tarFailed = await context.done;
    if (tarFailed) {
      await docker
        .getImage(tag)
        .remove({ force: true })
        .catch(() => undefined);
      throw new CliError(`image build failed: tar could not read the toolchain: ${tarFailed}`, 1);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  const built = await docker.getImage(tag).inspect();
  say(`image ${tag} built: ${built.Id}`);
  say(`offer it to specs (sandbox.image: ${tag}) with NIGHTSHIFT_DOCKER_IMAGES=${tag} on the server and workers`);
  return tag;
}
