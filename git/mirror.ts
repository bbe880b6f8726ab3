import { ApplicationFailure } from '@temporalio/activity';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { RepoRefusedError } from '../config/repoResolution';
import { resolveSpecRepo, type RemoteRepo } from '../config/remotes';
import type { ActivityDeps } from '../runtime/deps';
import { git, remoteGit, type RemoteAccess } from './git';
import { gitFailure } from './failure';

/** What mirrors need of a worker's dependencies (the benchmark makes these without a worker). */
export type MirrorDeps = Pick<ActivityDeps, 'home' | 'self' | 'secrets' | 'runLog'>;

/** A bare mirror per registered repo per worker: `$NIGHTSHIFT_HOME/mirrors/<worker>/<name>.git`. */
export function mirrorDir(home: string, worker: string, name: string): string {
  return path.join(home, 'mirrors', worker, `${name}.git`);
}

/**
 * `work` with git access to `remote`: its credential (a secret's NAME, its value from the worker's SecretStore) is
 * written to a git config file, 0600 in a 0700 directory under $NIGHTSHIFT_HOME (no sandbox mounts it), which
 * GIT_CONFIG_GLOBAL names, and removed after. An https token goes as an `Authorization: Basic` header
 * (`x-access-token:TOKEN`, which GitHub and Gitea both take; a `user:password` value as it is); an ssh key as a key
 * file that core.sshCommand names. Redirects are not followed, so the header goes to the registered host only.
 */
export async function withRemoteAccess<T>(
  deps: MirrorDeps,
  remote: RemoteRepo,
  work: (access: RemoteAccess) => Promise<T>,
  onStderr?: (chunk: string) => void,
): Promise<T> {
  const value = remote.credential ? deps.secrets.workerValue(remote.credential) : undefined;
  if (remote.credential && !value) {
    throw ApplicationFailure.nonRetryable(
      `repo ${remote.name}'s credential ${remote.credential} has no value on worker ${deps.self.worker}: set it in its environment or secrets.env`,
      'CredentialMissing',
    );
  }
  const parent = path.join(deps.home, 'mirrors');
  await fs.mkdir(parent, { recursive: true, mode: 0o700 });
  const dir = await fs.mkdtemp(path.join(parent, '.access-'));
  try {
    const protocol = new URL(remote.url).protocol.slice(0, -1) as RemoteAccess['protocol'];
    const globalConfig = path.join(dir, 'gitconfig');
    await fs.writeFile(globalConfig, await accessConfig(protocol, value, dir, deps.home), { mode: 0o600, flag: 'wx' });
    return await work({ globalConfig, protocol, onStderr });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** A git config value in double quotes (its `\` and `"` escaped). */
const quoted = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

async function accessConfig(
  protocol: RemoteAccess['protocol'],
  credential: string | undefined,
  dir: string,
  home: string,
): Promise<string> {
  if (protocol !== 'ssh') {
    const userPass =
      credential === undefined ? undefined : credential.includes(':') ? credential : `x-access-token:${credential}`;
    const header =
      userPass === undefined
        ? ''
        : `\textraHeader = ${quoted(`Authorization: Basic ${Buffer.from(userPass).toString('base64')}`)}\n`;
    return `[http]\n\tfollowRedirects = false\n${header}`;
  }
  // secrets.env holds one line per value: a key kept there has its line breaks written as \n.
  let identity = '-o IdentityFile=none';
  if (credential !== undefined) {
    const keyFile = path.join(dir, 'key');
    await fs.writeFile(keyFile, `${credential.replace(/\\n/g, '\n').trim()}\n`, { mode: 0o600, flag: 'wx' });
    identity = `-i '${keyFile}'`;
  }
  // Trust on first use, in a file of the server's own; no ~/.ssh/config, no agent, no prompt.
  const knownHosts = path.join(home, 'ssh_known_hosts');
  return `[core]\n\tsshCommand = ${quoted(`ssh -F /dev/null ${identity} -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile='${knownHosts}'`)}\n`;
}

const locks = new Map<string, Promise<unknown>>();

/** `work` after every earlier `work` on `key` in this process has ended: one git at a time in a mirror. */
async function locked<T>(key: string, work: () => Promise<T>): Promise<T> {
  const run = (locks.get(key) ?? Promise.resolve()).then(work, work);
  const tail = run.catch(() => undefined);
  locks.set(key, tail);
  try {
    return await run;
  } finally {
    if (locks.get(key) === tail) locks.delete(key);
  }
}

export interface MirrorSync {
  dir: string;
  cloned: boolean;
  /** Objects the fetch received (0 when nothing changed). */
  objects: number;
  ms: number;
}

/** Objects in a repo, loose and packed (`git count-objects -v`): the difference across a fetch is what it received. */
async function countObjects(dir: string): Promise<number> {
  if (!existsSync(path.join(dir, 'HEAD'))) return 0;
  const out = await git(dir, ['count-objects', '-v']);
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(out)?.[1] ?? 0);
  return field('count') + field('in-pack');
}

const PROGRESS_EVERY_MS = 5_000;

/**
 * Bring the worker's mirror of `remote` up to date: `clone --bare` the first time (into a staging directory renamed
 * into place, so a failed clone leaves no half mirror), then `fetch --prune` of branches and tags from the registered
 * URL (only what changed). Not `--mirror`: a forge's other refs (refs/pull/*) are not needed, and our own
 * (refs/nightshift/*, delivery) must survive the prune. The URL is given each time; the credential is never in the
 * mirror's config. Call under the mirror's lock (`withRepoSource`, `withMirror`).
 */
export async function syncMirror(deps: MirrorDeps, remote: RemoteRepo, runId?: string): Promise<MirrorSync> {
  const dir = mirrorDir(deps.home, deps.self.worker, remote.name);
  const started = Date.now();
  const before = await countObjects(dir);
  let shown = '';
  let latest = '';
  const ticker = runId
    ? setInterval(() => {
        if (latest && latest !== shown) void deps.runLog.append(runId, `mirror ${remote.name}: ${(shown = latest)}\n`);
      }, PROGRESS_EVERY_MS)
    : undefined;
  const onStderr = (chunk: string) => {
    latest =
      chunk
        .split(/[\r\n]/)
        .map((l) => l.trim())
        .filter(Boolean)
        .pop() ?? latest;
  };
  const cloned = !existsSync(path.join(dir, 'HEAD'));
  try {
    await withRemoteAccess(
      deps,
      remote,
      async (access) => {
        if (cloned) {
          const staging = `${dir}.clone-${process.pid}`;
          await fs.rm(staging, { recursive: true, force: true });
          await fs.mkdir(path.dirname(dir), { recursive: true });
          await remoteGit(
            path.dirname(dir),
            ['clone', '--bare', '--template=', '--progress', '--', remote.url, staging],
            access,
          );
          await fs.rename(staging, dir);
        } else {
          await remoteGit(
            dir,
            [
              'fetch',
              '--prune',
              '--progress',
              '--no-write-fetch-head',
              '--',
              remote.url,
              '+refs/heads/*:refs/heads/*',
              '+refs/tags/*:refs/tags/*',
            ],
            access,
          );
        }
      },
      onStderr,
    );
  } catch (err) {
    throw gitFailure(err, {
      type: 'RemoteUnreachable',
      what: `cannot ${cloned ? 'clone' : 'fetch'} ${remote.name} (${remote.url})`,
      retryable: true,
    });
  } finally {
    if (ticker) clearInterval(ticker);
  }
  const ms = Date.now() - started;
  return { dir, cloned, objects: Math.max(0, (await countObjects(dir)) - before), ms };
}

/** `use` with the worker's mirror of `remote`, freshly fetched, while no other git of this worker touches it. */
export function withMirror<T>(
  deps: MirrorDeps,
  remote: RemoteRepo,
  runId: string | undefined,
  use: (sync: MirrorSync) => Promise<T>,
): Promise<T> {
  return locked(mirrorDir(deps.home, deps.self.worker, remote.name), async () => {
    const sync = await syncMirror(deps, remote, runId);
    if (runId) {
      const how = sync.cloned ? 'cloned' : 'fetched';
      await deps.runLog.append(
        runId,
        `mirror ${remote.name} on ${deps.self.worker}: ${how} in ${(sync.ms / 1000).toFixed(1)} s, ${sync.objects} object${sync.objects === 1 ? '' : 's'} received\n`,
      );
    }
    return use(sync);
  });
}

/**
 * Where a run's repo is read from on this worker: a local repo's real path, or a remote's mirror (the server's own).
 */
export interface RepoSource {
  path: string;
  remote?: RemoteRepo;
}

/**
 * `use` with the run's repo as this worker resolves it (config/remotes.ts `resolveSpecRepo`, as the API did at
 * submit): a local repo inside the repos dir, or a registered remote's mirror, fetched first and locked meanwhile.
 * A refused repo fails the run (BadRepo), naming the worker.
 */
export async function withRepoSource<T>(
  deps: MirrorDeps & Pick<ActivityDeps, 'reposDir'>,
  repo: string,
  runId: string | undefined,
  use: (source: RepoSource) => Promise<T>,
): Promise<T> {
  let resolved;
  try {
    resolved = resolveSpecRepo(repo, deps);
  } catch (err) {
    if (err instanceof RepoRefusedError)
      throw ApplicationFailure.nonRetryable(`${err.message} (on worker ${deps.self.worker})`, 'BadRepo');
    throw err;
  }
  if (resolved.kind === 'local') return use({ path: resolved.path });
  const { remote } = resolved;
  return withMirror(deps, remote, runId, (sync) => use({ path: sync.dir, remote }));
}
