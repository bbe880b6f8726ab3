import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BRIDGE_PORT, GATEWAY_PORT } from './bridge';
import { EgressPolicy, EgressProxy } from './egress';
import type { SandboxPolicy } from './policy';
import type { ExecOptions } from './sandbox';

// What a sandbox looks like from inside, the same for every driver: an unprivileged user, the workspace as the
// working directory, a HOME of its own, and an environment built from scratch.
export const SANDBOX_UID = 1000;
export const WORKSPACE_DIR = '/workspace';
export const HOME_DIR = '/home/sandbox';
/** Where the sandbox sees the run's `meta/` directory (the prompt), read-only. */
export const META_DIR = '/nightshift';
/** Where the sandbox sees the egress bridge and the proxy's socket. */
export const NET_DIR = '/run/nightshift';
/**
 * Where the sandbox sees the run's git objects (`<root>/git/objects`), read-only: the agent's own `.git` borrows
 * them (objects/info/alternates) instead of a copy, so a repo's history costs nothing to hand over.
 */
export const GIT_OBJECTS_DIR = '/run/nightshift-git/objects';

/** The run's git objects on the host, under the sandbox's root, when the run has its git directory yet. */
export function runGitObjects(root: string): string | undefined {
  const objects = path.join(root, 'git', 'objects');
  return existsSync(objects) ? objects : undefined;
}

/** The sandbox's PATH without toolchains; a run's toolchains' `bin` directories go first (sandbox/toolchains.ts). */
export const SANDBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The toolchains' caches, in the sandbox's HOME (writable, and what the setup stage keeps of it besides the workspace:
 * docs/environments.md), wherever a toolchain's own defaults would put them. Go's module cache is made writable
 * (`-modcacherw`): read-only directories would stop a worker that is not root from deleting a sandbox or an entry.
 */
const CACHE_ENV: Record<string, string> = {
  GOPATH: `${HOME_DIR}/go`,
  GOMODCACHE: `${HOME_DIR}/go/pkg/mod`,
  GOCACHE: `${HOME_DIR}/.cache/go-build`,
  GOFLAGS: '-modcacherw',
  PIP_CACHE_DIR: `${HOME_DIR}/.cache/pip`,
  CARGO_HOME: `${HOME_DIR}/.cargo`,
};

const BASE_ENV: Record<string, string> = {
  PATH: SANDBOX_PATH,
  HOME: HOME_DIR,
  LANG: 'C.UTF-8',
  TMPDIR: '/tmp',
  USER: 'sandbox',
  ...CACHE_ENV,
};

/**
 * The system's CA bundle inside: the host's own on bwrap (its /etc/ssl), a copy of the host's in the docker image
 * (scripts/build-sandbox-image.sh). curl and git read it by themselves.
 */
export const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * The variables every command starts with. Node.js (and so npm) trusts only its built-in CAs unless told of the
 * bundle, and an egress that re-signs TLS (a corporate proxy) is trusted only there; named only when the sandbox has
 * the file, as node warns at every start about a missing one.
 */
export function baseEnv(hasCaBundle: boolean): Record<string, string> {
  return hasCaBundle ? { ...BASE_ENV, NODE_EXTRA_CA_CERTS: CA_BUNDLE } : { ...BASE_ENV };
}

// A sandbox's variables (secrets among them) never travel as a host process's arguments or environment, where
// any local user could read them in /proc/<pid>/cmdline (or environ): bwrap reads them from a pipe (`--args`), a
// container's exec loads them from a file (envScript).

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The variables, checked: names a shell can export, values without NUL (which neither channel can carry). */
export function envEntries(env: Record<string, string>): [string, string][] {
  const entries = Object.entries(env);
  for (const [name, value] of entries) {
    if (!ENV_NAME.test(name))
      throw new Error(`environment variable name ${JSON.stringify(name.slice(0, 80))} is not a valid name`);
    if (value.includes('\0')) throw new Error(`environment variable ${name} contains a NUL byte`);
  }
  return entries;
}

/**
 * `env` as a POSIX sh script of `export NAME='value'` lines: values are single-quoted, so no byte of them is ever
 * interpreted.
 */
export function envScript(env: Record<string, string>): string {
  return envEntries(env)
    .map(([name, value]) => `export ${name}='${value.replaceAll("'", `'\\''`)}'\n`)
    .join('');
}

/** `cmd` run by a shell that first loads the environment script at `file` (`.` stops the shell when it is missing). */
export function withEnvLoaded(cmd: string[], file: string): string[] {
  return ['/bin/sh', '-c', `. ${file} && exec "$@"`, 'sh', ...cmd];
}

/** The host directories of a sandbox under its root, each mounted at its place inside. */
export const SANDBOX_DIRS = ['workspace', 'home', 'tmp', 'meta', 'net'] as const;

/** The host directories a sandbox can write to: what the disk limit bounds. */
export function writableDirs(root: string): string[] {
  return ['workspace', 'home', 'tmp'].map((d) => path.join(root, d));
}

const PROXY = `http://127.0.0.1:${BRIDGE_PORT}`;
const NO_PROXY = 'localhost,127.0.0.1,::1';
/** Proxy variables for programs that honour them; enforcement is the empty network namespace, not these. */
const PROXY_ENV: Record<string, string> = {
  HTTP_PROXY: PROXY,
  HTTPS_PROXY: PROXY,
  http_proxy: PROXY,
  https_proxy: PROXY,
  NO_PROXY,
  no_proxy: NO_PROXY,
};

/**
 * The variables a command of a sandbox with `network` starts with, whichever driver (each adds the CA bundle's when
 * its system has one), `PATH` the one with the run's toolchains (sandbox/toolchains.ts, toolchainPath): what an
 * environment cache key names of them (workspaces/environments.ts).
 */
export function startingEnv(network: string[], PATH = SANDBOX_PATH): Record<string, string> {
  return { ...BASE_ENV, PATH, ...(network.length > 0 ? PROXY_ENV : {}) };
}

/** The model gateway's socket in a run's `net/` directory (the caller runs the gateway; the sandbox bridges to it). */
export function modelSocketPath(root: string): string {
  return path.join(root, 'net', 'model.sock');
}

/**
 * How one exec reaches the worker from its empty network namespace: the command under the bridge, and its variables.
 */
export interface WorkerLink {
  cmd: string[];
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * The bridge for one exec, or undefined when it needs none: the worker's egress proxy when the run has an allowlist
 * (a per-exec proxy on `net/proxy.sock`, every decision reported), and the model gateway when the caller runs one.
 * Connecting needs write permission on a socket, and the sandbox's user is not the worker's on every driver: the
 * sockets are open to all, in a directory only this sandbox sees.
 */
export async function linkToWorker(
  root: string,
  { network, internal }: Pick<SandboxPolicy, 'network' | 'internal'>,
  opts: ExecOptions,
): Promise<WorkerLink | undefined> {
  const dir = path.join(root, 'net');
  const forwards: string[] = [];
  let proxy: EgressProxy | undefined;
  if (network.length > 0) {
    const socket = path.join(dir, 'proxy.sock');
    await fs.rm(socket, { force: true });
    proxy = new EgressProxy(new EgressPolicy(network, internal), (d) => opts.onEgress?.(d));
    await proxy.listen(socket);
    await fs.chmod(socket, 0o666);
    forwards.push(`${BRIDGE_PORT}=${NET_DIR}/proxy.sock`);
  }
  if (opts.modelGateway) forwards.push(`${GATEWAY_PORT}=${NET_DIR}/${path.basename(modelSocketPath(root))}`);
  if (forwards.length === 0) return undefined;
  await fs.copyFile(path.join(__dirname, 'bridge.js'), path.join(dir, 'bridge.js'));
  return {
    cmd: ['node', `${NET_DIR}/bridge.js`, ...forwards, '--', ...opts.cmd],
    env: proxy ? PROXY_ENV : {},
    close: async () => proxy?.close(),
  };
}
