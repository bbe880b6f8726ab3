import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { mountSafe, overlayOnto, unmountUnder } from '../sandbox/overlay';
import type { ExecResult, Sandbox } from '../sandbox/sandbox';
import type { Setup, Spec } from '../spec/schema';
import type { EnvironmentView } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { EnvCache, type EnvironmentManifest, type EnvironmentSource } from './envCache';
import { paths, type RunRepo } from './git';
import { withHeartbeat } from './heartbeat';
import { CommandLog, egressLine, headerCommand } from './logs';
import { inCheckoutSandbox, openSandbox, runRepo, sandboxRoot, workerDir, workspaceLayer } from './workspace';

// The setup stage (docs/environments.md): the spec's setup commands run once, on a checkout of the base, with their
// own network; what they leave (node_modules, a virtualenv, the home's caches) becomes a read-only cache entry that
// every sandbox of the run (and of later runs with the same key) sees through a copy-on-write overlay.

/** What a run's environment is made from: enough to find it by key, or to make it again on any worker. */
export interface EnvironmentInput {
  repo: string;
  baseCommit: string;
  setup: Setup;
}

export interface SetupStageInput {
  runId: string;
  sandbox: Spec['sandbox'];
  environment: EnvironmentInput;
}

export type SetupStageResult = { environment: EnvironmentView } | { failed: string; logId: string };

/** Lock files that key the cache when the spec names none: whichever the base has at its top level. */
const LOCK_FILES = ['package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb', 'requirements.txt', 'poetry.lock', 'Pipfile.lock', 'uv.lock', 'go.sum', 'Cargo.lock', 'Gemfile.lock', 'composer.lock'];

/** npm's download cache: what it installed is in the workspace already; keeping its tarballs would double the entry. */
const HOME_SKIPPED = ['.npm'];

export function envCacheOf(deps: ActivityDeps): EnvCache {
  return new EnvCache(path.join(workerDir(deps.home, deps.self.worker), '.env-cache'), deps.envCacheBytes, deps.store);
}

/**
 * The cache key: the repo, the key files' contents at the base (their blob ids, read from the run's git directory,
 * never from a workspace), the commands, and the sandbox the setup ran in (driver and image). A base with none of the
 * key files is keyed by its whole tree.
 */
export async function environmentKey(deps: ActivityDeps, repo: RunRepo, input: EnvironmentInput, driver: Spec['sandbox']['driver']): Promise<string> {
  const top = paths(await repo.git(['ls-tree', '-z', '--name-only', input.baseCommit]));
  const files = input.setup.key ?? LOCK_FILES.filter((f) => top.includes(f));
  const digests: Record<string, string> = {};
  for (const file of files) digests[file] = (await repo.git(['rev-parse', '--verify', '--quiet', `${input.baseCommit}:${file}`]).catch(() => 'absent')).trim();
  const tree = files.length ? undefined : (await repo.git(['rev-parse', `${input.baseCommit}^{tree}`])).trim();
  const image = (await deps.drivers[driver]?.image())?.digest ?? 'host';
  const keyed = { v: 1, repo: input.repo, files: digests, tree, run: input.setup.run, driver, image };
  return createHash('sha256').update(JSON.stringify(keyed)).digest('hex').slice(0, 40);
}

/**
 * The run's environment on this worker, from the cache, the artifact store, or made now by running the setup; then
 * seen in `sandbox` (its workspace `repo`) through overlays. A failing setup is returned, not thrown: it is the
 * repo's problem, not the worker's.
 */
export async function provideEnvironment(deps: ActivityDeps, runId: string, sandbox: Sandbox, repo: RunRepo, policy: Spec['sandbox'], input: EnvironmentInput): Promise<{ view: EnvironmentView } | { failed: string; logId: string }> {
  const started = Date.now();
  const cache = envCacheOf(deps);
  const key = await environmentKey(deps, repo, input, policy.driver);
  let source: EnvironmentSource = 'worker';
  let manifest = await cache.local(key);
  if (!manifest) {
    source = 'store';
    manifest = await cache.fromStore(key);
  }
  if (!manifest) {
    source = 'built';
    const built = await buildEnvironment(deps, runId, policy, input, cache, key);
    if ('failed' in built) return built;
    manifest = built.manifest;
  }
  const mounted = await mountEnvironment(cache.entryDir(key), manifest, sandbox, repo);
  const view: EnvironmentView = { key, source, paths: manifest.paths, home: manifest.home, bytes: manifest.bytes, mounted, readyMs: Date.now() - started };
  await deps.runLog.append(runId, `[nightshift: environment ${key.slice(0, 12)} ${SOURCE_WORDS[source]} in ${view.readyMs} ms: ${[...manifest.paths, ...(manifest.home ? ['~'] : [])].join(', ') || 'nothing kept'} (${(manifest.bytes / 1024 ** 2).toFixed(1)} MiB, ${mounted === 'overlay' ? 'a copy-on-write overlay' : 'copied: overlays need a root worker'})]\n`);
  return { view };
}

const SOURCE_WORDS: Record<EnvironmentSource, string> = { built: 'made by the setup', worker: "from this worker's cache", store: 'from the artifact store' };

/** The setup's commands in a sandbox of their own on a checkout of the base, then what they made, moved into the cache. */
async function buildEnvironment(deps: ActivityDeps, runId: string, policy: Spec['sandbox'], input: EnvironmentInput, cache: EnvCache, key: string): Promise<{ manifest: EnvironmentManifest } | { failed: string; logId: string }> {
  const network = [...deps.setupNetwork, ...input.setup.network];
  const setupPolicy = { ...policy, network, timeout: input.setup.timeout ?? policy.timeout };
  return inCheckoutSandbox(deps, runId, 'setup', setupPolicy, input.baseCommit, async (sandbox, repo) => {
    const deadline = Date.now() + setupPolicy.timeout;
    for (const command of input.setup.run) {
      const log = new CommandLog(deps.runLog, runId, `setup: ${headerCommand(command)} (network: ${network.join(', ') || 'none'})`);
      const exec = await sandbox.exec({ cmd: ['sh', '-c', command], timeoutMs: Math.max(1000, deadline - Date.now()), signal: Context.current().cancellationSignal, onOutput: (t, stream) => log.write(t, stream), onEgress: (d) => log.write(egressLine(d)) });
      const failed = setupFailure(command, exec, setupPolicy.timeout);
      if (failed) log.write(`[nightshift: ${failed}]\n`);
      const { logId } = await log.close(deps.store);
      if (failed) return { failed, logId };
    }
    const manifest = await cache.add(key, deps.self.worker, (staging) => keepWhatSetupMade(deps, runId, sandbox, repo, staging));
    return { manifest };
  }, { over: input.baseCommit });
}

/** Why a setup command failed, in a line; undefined when it did not. */
function setupFailure(command: string, exec: ExecResult, timeoutMs: number): string | undefined {
  if (exec.exitCode === 0 && !exec.timedOut && !exec.limitHit) return undefined;
  const how = exec.timedOut ? `timed out after ${Math.round(timeoutMs / 1000)} s` : exec.limitHit ? `ran into a sandbox limit: ${exec.limitHit}` : `exited ${exec.exitCode ?? 'on a signal'}`;
  return `setup command "${headerCommand(command)}" ${how}`;
}

/**
 * Moves what the setup made into `staging`: the untracked and ignored directories git lists (a setup's changes to
 * tracked files are not kept), each checked to be a real directory inside the workspace (a setup's link to elsewhere
 * is not followed), and the sandbox's home.
 */
async function keepWhatSetupMade(deps: ActivityDeps, runId: string, sandbox: Sandbox, repo: RunRepo, staging: string): Promise<{ paths: string[]; home: boolean }> {
  const workspace = await fs.realpath(sandbox.workspace);
  const listed = paths(await repo.git(['status', '--porcelain', '-z', '--ignored=matching', '--untracked-files=normal', '--ignore-submodules=all']));
  const kept: string[] = [];
  const dropped: string[] = [];
  for (const entry of listed) {
    const [status, rel] = [entry.slice(0, 2), entry.slice(3)];
    if ((status !== '??' && status !== '!!') || rel === '.git/') continue;
    const dir = rel.replace(/\/$/, '');
    // A name an overlay's options would read as more (`x:..`, `a,b`) is not kept: see sandbox/overlay.ts.
    const real = rel.endsWith('/') && dir.split('/').every(mountSafe) ? await fs.realpath(path.join(workspace, dir)).catch(() => undefined) : undefined;
    if (real === path.join(workspace, dir) && (await fs.lstat(real).then((s) => s.isDirectory(), () => false))) kept.push(dir);
    else dropped.push(rel);
  }
  // What the setup made is all in the workspace overlay's upper layer (untracked: none of it in the checkout below):
  // moved from there, the overlay down, rather than copied through it.
  await unmountUnder(sandbox.workspace);
  const upper = path.join(workspaceLayer(repo.root), 'upper');
  for (const dir of kept) {
    const layered = path.join(upper, dir);
    const from = (await fs.lstat(layered).then((s) => s.isDirectory(), () => false)) ? layered : path.join(workspace, dir);
    await fs.mkdir(path.dirname(path.join(staging, 'workspace', dir)), { recursive: true });
    await fs.rename(from, path.join(staging, 'workspace', dir));
  }
  const homeDir = path.join(sandboxRoot(deps, sandbox.runId), 'home');
  for (const skipped of HOME_SKIPPED) await fs.rm(path.join(homeDir, skipped), { recursive: true, force: true });
  const home = (await fs.readdir(homeDir)).length > 0;
  if (home) await fs.rename(homeDir, path.join(staging, 'home'));
  if (dropped.length) await deps.runLog.append(runId, `[nightshift: setup left files that are not kept (only real directories with plain names are): ${dropped.slice(0, 10).map((d) => JSON.stringify(d)).join(', ')}]\n`);
  return { paths: kept, home };
}

/**
 * The entry seen in the sandbox: an overlay on each of its directories in the workspace and on the home, writes going
 * to the sandbox's own `env/` (outside every mount), and the directories excluded from the run's git (the host never
 * commits or walks them). A mount point is made only through real directories: a link the checkout holds (an agent's
 * commit) is never followed out of the workspace.
 */
async function mountEnvironment(entry: string, manifest: EnvironmentManifest, sandbox: Sandbox, repo: RunRepo): Promise<'overlay' | 'copy'> {
  const scratch = path.join(repo.root, 'env');
  // A retried step mounts afresh: its own mounts go, not the workspace's (an overlay itself, activities/checkouts.ts).
  for (const rel of manifest.paths) await unmountUnder(path.join(sandbox.workspace, rel));
  await unmountUnder(path.join(repo.root, 'home'));
  await fs.rm(scratch, { recursive: true, force: true });
  await fs.mkdir(path.join(repo.gitDir, 'info'), { recursive: true });
  await fs.writeFile(path.join(repo.gitDir, 'info', 'exclude'), manifest.paths.map((p) => `/${p.replace(/[\\*?[!#]/g, '\\$&')}/\n`).join(''));
  let mounted: 'overlay' | 'copy' = 'overlay';
  for (const [i, rel] of manifest.paths.entries()) {
    const target = await mountPoint(sandbox.workspace, rel);
    if (!target) continue;
    if ((await overlayOnto(path.join(entry, 'workspace', rel), target, path.join(scratch, String(i)))) === 'copy') mounted = 'copy';
  }
  if (manifest.home && (await overlayOnto(path.join(entry, 'home'), path.join(repo.root, 'home'), path.join(scratch, 'home'))) === 'copy') mounted = 'copy';
  return mounted;
}

/** `rel` below `workspace` as an empty directory, made one component at a time; undefined when a component is not a real directory. */
async function mountPoint(workspace: string, rel: string): Promise<string | undefined> {
  let dir = workspace;
  for (const part of rel.split('/')) {
    dir = path.join(dir, part);
    const stat = await fs.lstat(dir).catch(() => undefined);
    if (!stat) await fs.mkdir(dir);
    else if (!stat.isDirectory()) return undefined;
  }
  return dir;
}

export function environmentActivities(deps: ActivityDeps) {
  return {
    /** The setup stage: the run's environment made (or found) and seen in its sandbox, before the agent's first iteration. */
    async prepareEnvironment(input: SetupStageInput): Promise<SetupStageResult> {
      return withHeartbeat(async () => {
        const sandbox = await openSandbox(deps, input.runId, input.sandbox);
        const got = await provideEnvironment(deps, input.runId, sandbox, runRepo(deps, sandbox), input.sandbox, input.environment);
        return 'failed' in got ? got : { environment: got.view };
      });
    },
  };
}
