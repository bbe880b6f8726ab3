import { existsSync, lstatSync, realpathSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { TOOLCHAIN_NAME } from '../spec/schema';

/**
 * Where no toolchain may be, lie inside, or hold (docs/reference.md, "Toolchains"): a bwrap sandbox sees the
 * directory read-only at its own path, so it must hold nothing of the host's secrets or live state (the Docker/Podman
 * socket is in /run: a read-only bind leaves a socket connectable), and must not shadow a place of the sandbox's own.
 */
const NEVER: { dir: string; what: string }[] = [
  { dir: '/root', what: "root's home" },
  { dir: '/etc', what: "the host's configuration (secrets among it)" },
  { dir: '/home', what: "the users' homes (and the sandbox's own HOME)" },
  { dir: '/proc', what: "the host's live state" },
  { dir: '/sys', what: "the host's live state" },
  { dir: '/dev', what: "the host's devices" },
  { dir: '/run', what: "the host's sockets" },
  { dir: '/var/run', what: "the host's sockets" },
  { dir: '/tmp', what: 'any local user can write there; the sandbox has its own /tmp' },
  { dir: '/workspace', what: "the sandbox's workspace" },
  { dir: '/nightshift', what: "the sandbox's prompt directory" },
  { dir: '/opt/nightshift', what: "the agent CLIs' place in the sandbox" },
];

/** The server's own places a toolchain must keep clear of, besides NEVER: its home, repos, hold-out sets. */
export interface GuardedDirs {
  /** The worker's $HOME (and the user's home directory). */
  homes: string[];
  /** NIGHTSHIFT_HOME, the repos and hold-out directories, the artifact store's directory. */
  server: string[];
}

/** `name=/dir,…` (NIGHTSHIFT_TOOLCHAINS) → name → the directory's real path, each checked (checkToolchainDir). */
export function toolchainsFrom(raw: string | undefined, guarded: GuardedDirs): Record<string, string> {
  const toolchains: Record<string, string> = {};
  const entries = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, Math.max(eq, 0)).trim();
    if (eq < 0 || !TOOLCHAIN_NAME.test(name))
      throw new Error(
        `NIGHTSHIFT_TOOLCHAINS: "${entry}" is not name=/directory (a name is lowercase letters, digits, - and _)`,
      );
    if (Object.hasOwn(toolchains, name)) throw new Error(`NIGHTSHIFT_TOOLCHAINS names the toolchain ${name} twice`);
    const dir = entry.slice(eq + 1).trim();
    const why = toolchainDirProblem(dir, guarded);
    if (typeof why === 'object') toolchains[name] = why.real;
    else throw new Error(`NIGHTSHIFT_TOOLCHAINS: ${name}=${dir} ${why}`);
  }
  return toolchains;
}

/**
 * Whether `dir` can be a toolchain: an absolute path to a directory with a `bin/` directory (not a link), which
 * neither is, lies inside nor holds any of NEVER or the guarded places, whichever links it goes through (they are
 * resolved first: a link to /root/.ssh is /root/.ssh). Its real path, or why not.
 */
function toolchainDirProblem(dir: string, guarded: GuardedDirs): { real: string } | string {
  if (!path.isAbsolute(dir)) return 'is not an absolute path';
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    // A path into /root is refused for that, whether or not it exists.
    return clashWith(path.resolve(dir), guarded) ?? 'does not exist';
  }
  const via = real === path.resolve(dir) ? '' : `leads to ${real}, `;
  const clash = clashWith(real, guarded);
  if (clash) return `${via ? `${via}which ` : ''}${clash}`;
  if (!statSync(real).isDirectory()) return `${via}is not a directory`;
  const bin = path.join(real, 'bin');
  if (!existsSync(bin) || !lstatSync(bin).isDirectory()) return `${via}has no bin/ directory`;
  return { real };
}

/** `is inside /root (root's home)` or `holds /root (…)` when `dir` is, lies inside or holds a place it must not. */
function clashWith(dir: string, guarded: GuardedDirs): string | undefined {
  // The server's own places first: they may lie inside one of NEVER (/tmp, /root), and say more.
  const places = [
    ...guarded.server.map((d) => ({ dir: d, what: "Nightshift's own data" })),
    ...guarded.homes.map((d) => ({ dir: d, what: "the worker's home" })),
    ...NEVER,
  ];
  for (const place of places) {
    for (const other of new Set([path.resolve(place.dir), existsSync(place.dir) ? realpathSync(place.dir) : ''])) {
      if (!other) continue;
      if (dir === other || dir.startsWith(`${other}/`)) return `is inside ${place.dir} (${place.what})`;
      if (dir === '/' || other.startsWith(`${dir}/`)) return `holds ${place.dir} (${place.what})`;
    }
  }
  return undefined;
}

/** Toolchains commonly installed where `doctor` looks: name, directory, a tool its bin/ holds. */
const KNOWN: [string, string, string][] = [
  ['go', '/usr/local/go', 'go'],
  ['python', '/usr', 'python3'],
];

/** Toolchains found on this machine that could be offered (for `doctor`'s suggestion): `name=dir`. */
export function foundToolchains(guarded: GuardedDirs): string[] {
  return KNOWN.filter(
    ([, dir, tool]) => existsSync(path.join(dir, 'bin', tool)) && typeof toolchainDirProblem(dir, guarded) === 'object',
  ).map(([name, dir]) => `${name}=${dir}`);
}
