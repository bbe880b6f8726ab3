import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BRIDGE_PORT } from './bridge';
import { EgressPolicy, EgressProxy, type EgressDecision } from './egress';

// What a sandbox looks like from inside, the same for every driver: an unprivileged user, the workspace as the
// working directory, a HOME of its own, and an environment built from scratch.
export const SANDBOX_UID = 1000;
export const WORKSPACE_DIR = '/workspace';
export const HOME_DIR = '/home/sandbox';
/** Where the sandbox sees the run's `meta/` directory (the prompt), read-only. */
export const META_DIR = '/nightshift';
/** Where the sandbox sees the egress bridge and the proxy's socket. */
export const NET_DIR = '/run/nightshift';

export const BASE_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: HOME_DIR,
  LANG: 'C.UTF-8',
  TMPDIR: '/tmp',
  USER: 'sandbox',
};

/** The host directories of a sandbox under its root, each mounted at its place inside. */
export const SANDBOX_DIRS = ['workspace', 'home', 'tmp', 'meta', 'net'] as const;

/** The host directories a sandbox can write to: what the disk limit bounds. */
export function writableDirs(root: string): string[] {
  return ['workspace', 'home', 'tmp'].map((d) => path.join(root, d));
}

const PROXY = `http://127.0.0.1:${BRIDGE_PORT}`;
const NO_PROXY = 'localhost,127.0.0.1,::1';
/** Proxy variables for programs that honour them; enforcement is the empty network namespace, not these. */
export const PROXY_ENV: Record<string, string> = { HTTP_PROXY: PROXY, HTTPS_PROXY: PROXY, http_proxy: PROXY, https_proxy: PROXY, NO_PROXY, no_proxy: NO_PROXY };

/** `cmd` run under the bridge that carries the sandbox's loopback proxy port to the worker's egress proxy. */
export function underBridge(cmd: string[]): string[] {
  return ['node', `${NET_DIR}/bridge.js`, `${NET_DIR}/proxy.sock`, ...cmd];
}

/** Workspace paths mounted read-only over the workspace: the agent may commit, but not plant hooks or config that git would run or obey later. */
export function protectedGitPaths(workspace: string): string[] {
  return ['.git/hooks', '.git/config'].filter((p) => existsSync(path.join(workspace, p)));
}

/**
 * The worker's egress proxy for one exec of a run, on a unix socket in the sandbox's `net/` directory, with the
 * bridge beside it; undefined when the run has no network. The socket is open to the sandbox's user only through
 * that directory, which no other sandbox sees.
 */
export async function startEgress(root: string, network: string[], onEgress?: (d: EgressDecision) => void): Promise<EgressProxy | undefined> {
  if (network.length === 0) return undefined;
  const dir = path.join(root, 'net');
  await fs.copyFile(path.join(__dirname, 'bridge.js'), path.join(dir, 'bridge.js'));
  const socket = path.join(dir, 'proxy.sock');
  await fs.rm(socket, { force: true });
  const proxy = new EgressProxy(new EgressPolicy(network), (d) => onEgress?.(d));
  await proxy.listen(socket);
  // Connecting needs write permission on the socket; the sandbox's user is not the worker's on every driver.
  await fs.chmod(socket, 0o666);
  return proxy;
}
