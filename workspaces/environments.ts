import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ActivityDeps } from '../runtime/deps';
import { EnvCache, type EnvironmentSource, type EnvironmentManifest } from './envCache';
import { workerDir, sandboxRoot, freshSandbox, layOutOver, workspaceLayer } from './sandboxes';
import type { EnvironmentInput } from '../contracts/setup';
import type { Spec, Setup } from '../spec/schema';
import { RunRepo, type Git, DEFAULT_BRANCH_CONFIG, paths } from '../git/git';
import { policyFor } from '../sandbox/policy';
import { startingEnv } from '../sandbox/layout';
import { notFoundInSandbox, toolchainFingerprint, toolchainPath } from '../sandbox/toolchains';
import type { Sandbox, ExecResult } from '../sandbox/sandbox';
import type { EnvironmentView } from '../contracts/run';
import { CommandLog, headerCommand, egressLine, commandPassed } from './commandLog';
import { unmountUnder, overlayOnto, mountSafe } from '../sandbox/overlay';

function envCacheOf(deps: ActivityDeps): EnvCache {
  return new EnvCache(path.join(workerDir(deps.home, deps.self.worker), '.env-cache'), deps.envCacheBytes, deps.store);
}

/**
 * The cache key: everything that shapes what the setup makes (docs/environments.md, "The key"), read from the run's
 * own git directory (never a workspace). The base's whole tree, or with `setup.key` the blobs of the files the spec
 * says are all the setup reads; the commands; the sandbox they run in as it is opened (driver, image or host system,
 * limits, network, the admin's internal openings, timeout, the variables its commands start with). And who may share
 * it: a base on the default branch's history is the repo's own code, an entry anyone's run may reuse; any other base
 * is its submitter's alone, so no branch of one author's decides what another author's run gets.
 */
export async function environmentKey(
  deps: ActivityDeps,
  runId: string,
  input: EnvironmentInput,
  policy: Spec['sandbox'],
): Promise<string> {
  const { git } = new RunRepo(sandboxRoot(deps, runId), path.join(sandboxRoot(deps, runId), 'workspace'));
  const files: Record<string, string> = {};
  for (const file of input.setup.key ?? [])
    files[file] = (
      await git(['rev-parse', '--verify', '--quiet', `${input.baseCommit}:${file}`]).catch(() => 'absent')
    ).trim();
  const tree = input.setup.key ? undefined : (await git(['rev-parse', `${input.baseCommit}^{tree}`])).trim();
  const setupPolicy = setupSandbox(deps, policy, input.setup);
  const opened = policyFor(setupPolicy, deps.egressInternal);
  const toolchains = opened.toolchains ?? [];
  const image = (await deps.drivers[policy.driver]?.image(policy))?.digest;
  const sandbox = {
    ...opened,
    driver: policy.driver,
    image: image ?? (await hostSystem()),
    // On the host's system, the toolchains are the worker's directories: which, and what their bin/ holds.
    ...(image || !toolchains.length ? {} : { toolchainDirs: await fingerprints(toolchains, deps.toolchains) }),
    timeout: setupPolicy.timeout,
    // bwrap puts the toolchains' bin on PATH; an image has its own.
    env: startingEnv(opened.network, image ? undefined : toolchainPath(toolchains, deps.toolchains)),
  };
  // A run scheduled before submitters were passed (an old history) keeps an off-branch entry to itself.
  const sharedWith = (await onDefaultBranch(git, input.baseCommit))
    ? 'everyone'
    : `submitter:${input.submittedBy ?? `run:${runId}`}`;
  const keyed = { v: 2, repo: input.repo, tree, files, run: input.setup.run, sandbox, sharedWith };
  return createHash('sha256').update(JSON.stringify(keyed)).digest('hex').slice(0, 40);
}

/**
 * The run's environment on this worker, from the cache, the artifact store, or made now by running the setup; then
 * seen in `sandbox` (its workspace `repo`) through overlays. A failing setup is returned, not thrown: it is the
 * repo's problem, not the worker's.
 */
export async function provideEnvironment(
  deps: ActivityDeps,
  runId: string,
  sandbox: Sandbox,
  repo: RunRepo,
  policy: Spec['sandbox'],
  input: EnvironmentInput,
): Promise<{ view: EnvironmentView } | { failed: string; logId: string }> {
  const started = Date.now();
  const cache = envCacheOf(deps);
  const key = await environmentKey(deps, runId, input, policy);
  let source: EnvironmentSource = 'worker';
  let manifest = await cache.local(key);
  if (!manifest) {
    source = 'store';
    const fetched = await cache.fromStore(key);
    if (fetched && 'refused' in fetched)
      await deps.runLog.append(runId, `[nightshift: ${fetched.refused}; the setup makes it again]\n`);
    else manifest = fetched;
  }
  if (!manifest) {
    source = 'built';
    const built = await buildEnvironment(deps, runId, policy, input, cache, key);
    if ('failed' in built) return built;
    manifest = built.manifest;
  }
  const mounted = await mountEnvironment(cache.entryDir(key), manifest, sandbox, repo);
  const view: EnvironmentView = {
    key,
    source,
    paths: manifest.paths,
    home: manifest.home,
    bytes: manifest.bytes,
    mounted,
    readyMs: Date.now() - started,
  };
  await deps.runLog.append(
    runId,
    `[nightshift: environment ${key.slice(0, 12)} ${SOURCE_WORDS[source]} in ${view.readyMs} ms: ${[...manifest.paths, ...(manifest.home ? ['~'] : [])].join(', ') || 'nothing kept'} (${(manifest.bytes / 1024 ** 2).toFixed(1)} MiB, ${mounted === 'overlay' ? 'a copy-on-write overlay' : 'copied: overlays need a root worker'})]\n`,
  );
  return { view };
}

/** A driver without an image runs on the host's system: its release and architecture stand in for the image. */
async function hostSystem(): Promise<string> {
  const release = await fs.readFile('/etc/os-release', 'utf8').catch(() => '');
  return `host:${process.platform}-${process.arch}:${createHash('sha256').update(release).digest('hex').slice(0, 16)}`;
}

async function fingerprints(names: string[], offered: Record<string, string>): Promise<Record<string, string>> {
  const prints: Record<string, string> = {};
  for (const name of names) prints[name] = offered[name] ? await toolchainFingerprint(offered[name]) : 'absent';
  return prints;
}

/**
 * Whether `commit` is on the history of the repo's default branch (its source's HEAD when the run's repo was cloned).
 */
async function onDefaultBranch(git: Git, commit: string): Promise<boolean> {
  const branch = (await git(['config', '--get', DEFAULT_BRANCH_CONFIG]).catch(() => '')).trim();
  if (!branch) return false;
  return git(['merge-base', '--is-ancestor', commit, `refs/heads/${branch}`]).then(
    () => true,
    () => false,
  );
}

const SOURCE_WORDS: Record<EnvironmentSource, string> = {
  built: 'made by the setup',
  worker: "from this worker's cache",
  store: 'from the artifact store',
};

/**
 * The setup's commands in a sandbox of their own on a checkout of the base, then what they made, moved into the cache.
 */
async function buildEnvironment(
  deps: ActivityDeps,
  runId: string,
  policy: Spec['sandbox'],
  input: EnvironmentInput,
  cache: EnvCache,
  key: string,
): Promise<{ manifest: EnvironmentManifest } | { failed: string; logId: string }> {
  const setupPolicy = setupSandbox(deps, policy, input.setup);
  const { network } = setupPolicy;
  return inCheckoutSandbox(
    deps,
    runId,
    'setup',
    setupPolicy,
    input.baseCommit,
    async (sandbox, repo) => {
      const deadline = Date.now() + setupPolicy.timeout;
      for (const command of input.setup.run) {
        const log = new CommandLog(
          deps.runLog,
          runId,
          `setup: ${headerCommand(command)} (network: ${network.join(', ') || 'none'})`,
        );
        const exec = await sandbox.exec({
          cmd: ['sh', '-c', command],
          timeoutMs: Math.max(1000, deadline - Date.now()),
          signal: Context.current().cancellationSignal,
          onOutput: (t, stream) => log.write(t, stream),
          onEgress: (d) => log.write(egressLine(d)),
        });
        const notFound = notFoundInSandbox(exec.exitCode, log.text(), Object.keys(deps.toolchains));
        const failed = setupFailure(command, exec, setupPolicy.timeout, notFound);
        if (failed) log.write(`[nightshift: ${failed}]\n`);
        const { logId } = await log.close(deps.store);
        if (failed) return { failed, logId };
      }
      const manifest = await cache.add(key, deps.self.worker, (staging) =>
        keepWhatSetupMade(deps, runId, sandbox, repo, staging),
      );
      return { manifest };
    },
    { over: input.baseCommit },
  );
}

/**
 * The entry seen in the sandbox: an overlay on each of its directories in the workspace and on the home, writes going
 * to the sandbox's own `env/` (outside every mount), and the directories excluded from the run's git (the host never
 * commits or walks them). A mount point is made only through real directories: a link the checkout holds (an agent's
 * commit) is never followed out of the workspace.
 */
async function mountEnvironment(
  entry: string,
  manifest: EnvironmentManifest,
  sandbox: Sandbox,
  repo: RunRepo,
): Promise<'overlay' | 'copy'> {
  const scratch = path.join(repo.root, 'env');
  // A retried step mounts afresh: its own mounts go, not the workspace's (an overlay itself, git/checkouts.ts).
  for (const rel of manifest.paths) await unmountUnder(path.join(sandbox.workspace, rel));
  await unmountUnder(path.join(repo.root, 'home'));
  await fs.rm(scratch, { recursive: true, force: true });
  await fs.mkdir(path.join(repo.gitDir, 'info'), { recursive: true });
  await fs.writeFile(
    path.join(repo.gitDir, 'info', 'exclude'),
    manifest.paths.map((p) => `/${p.replace(/[\\*?[!#]/g, '\\$&')}/\n`).join(''),
  );
  let mounted: 'overlay' | 'copy' = 'overlay';
  for (const [i, rel] of manifest.paths.entries()) {
    const target = await mountPoint(sandbox.workspace, rel);
    if (!target) continue;
    if ((await overlayOnto(path.join(entry, 'workspace', rel), target, path.join(scratch, String(i)))) === 'copy')
      mounted = 'copy';
  }
  if (
    manifest.home &&
    (await overlayOnto(path.join(entry, 'home'), path.join(repo.root, 'home'), path.join(scratch, 'home'))) === 'copy'
  )
    mounted = 'copy';
  return mounted;
}

/** The run's environment in a sandbox other than the setup stage's: one that cannot be had now ends the step. */
export async function restoreEnvironment(
  deps: ActivityDeps,
  runId: string,
  sandbox: Sandbox,
  repo: RunRepo,
  policy: Spec['sandbox'],
  environment: EnvironmentInput,
): Promise<void> {
  const got = await provideEnvironment(deps, runId, sandbox, repo, policy, environment);
  if ('failed' in got)
    throw ApplicationFailure.nonRetryable(
      `the run's environment could not be made again: ${got.failed}`,
      'SetupFailed',
    );
}

interface CheckoutOptions {
  /** The run's environment, for the sandbox to have it too. */
  environment?: EnvironmentInput;
  /**
   * A commit of the repo's own (the base; never an agent's, whose attributes would shape the files other runs see) to
   * lie over as a kept checkout; none: the files are written out.
   */
  over?: string;
}

/**
 * `work` in a sandbox of its own (`<run id>-<suffix>`, with `policy`) on a fresh checkout of `commit` from the run's
 * git directory: what was committed, nothing the agent left beside it. The sandbox is removed afterwards, whatever
 * happened, and before, in case an earlier attempt (a retry, a restarted worker) left it.
 */
export async function inCheckoutSandbox<T>(
  deps: ActivityDeps,
  runId: string,
  suffix: string,
  policy: Spec['sandbox'],
  commit: string,
  work: (sandbox: Sandbox, repo: RunRepo) => Promise<T>,
  opts: CheckoutOptions = {},
): Promise<T> {
  const id = `${runId}-${suffix}`;
  const sandbox = await freshSandbox(deps, id, policy);
  try {
    const repo = new RunRepo(sandboxRoot(deps, id), sandbox.workspace);
    // Hard links: the run's git directory is the server's own (outside every sandbox), and every check runs in one of
    // these: its objects are linked, not copied, however big the repo.
    await repo.cloneFrom(path.join(sandboxRoot(deps, runId), 'git'), { hardlinks: true });
    await layOutOver(deps, repo, policy.driver, await repo.branch(), commit, opts.over);
    if (opts.environment) await restoreEnvironment(deps, runId, sandbox, repo, policy, opts.environment);
    return await work(sandbox, repo);
  } finally {
    await sandbox.teardown();
  }
}

/**
 * The sandbox the setup runs in: the run's, with the setup's network (the admin's default and the spec's) and timeout.
 */
function setupSandbox(deps: ActivityDeps, policy: Spec['sandbox'], setup: Setup): Spec['sandbox'] {
  return { ...policy, network: [...deps.setupNetwork, ...setup.network], timeout: setup.timeout ?? policy.timeout };
}

/**
 * Why a setup command failed, in a line; undefined when it did not. `notFound`: the command its shell did not find
 * (notFoundInSandbox), said after the exit code.
 */
function setupFailure(command: string, exec: ExecResult, timeoutMs: number, notFound?: string): string | undefined {
  if (commandPassed(exec)) return undefined;
  const how = exec.timedOut
    ? `timed out after ${Math.round(timeoutMs / 1000)} s`
    : exec.limitHit
      ? `ran into a sandbox limit: ${exec.limitHit}`
      : `exited ${exec.exitCode ?? 'on a signal'}${notFound ? `: ${notFound}` : ''}`;
  return `setup command "${headerCommand(command)}" ${how}`;
}

/**
 * Moves what the setup made into `staging`: the untracked and ignored directories git lists (a setup's changes to
 * tracked files are not kept), each checked to be a real directory inside the workspace (a setup's link to elsewhere
 * is not followed), and the sandbox's home.
 */
async function keepWhatSetupMade(
  deps: ActivityDeps,
  runId: string,
  sandbox: Sandbox,
  repo: RunRepo,
  staging: string,
): Promise<{ paths: string[]; home: boolean }> {
  const workspace = await fs.realpath(sandbox.workspace);
  const listed = paths(
    await repo.git([
      'status',
      '--porcelain',
      '-z',
      '--ignored=matching',
      '--untracked-files=normal',
      '--ignore-submodules=all',
    ]),
  );
  const kept: string[] = [];
  const dropped: string[] = [];
  for (const entry of listed) {
    const [status, rel] = [entry.slice(0, 2), entry.slice(3)];
    if ((status !== '??' && status !== '!!') || rel === '.git/') continue;
    const dir = rel.replace(/\/$/, '');
    // A name an overlay's options would read as more (`x:..`, `a,b`) is not kept: see sandbox/overlay.ts.
    const real =
      rel.endsWith('/') && dir.split('/').every(mountSafe)
        ? await fs.realpath(path.join(workspace, dir)).catch(() => undefined)
        : undefined;
    if (
      real === path.join(workspace, dir) &&
      (await fs.lstat(real).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    )
      kept.push(dir);
    else dropped.push(rel);
  }
  // What the setup made is all in the workspace overlay's upper layer (untracked: none of it in the checkout below):
  // moved from there, the overlay down, rather than copied through it.
  await unmountUnder(sandbox.workspace);
  const upper = path.join(workspaceLayer(repo.root), 'upper');
  for (const dir of kept) {
    const layered = path.join(upper, dir);
    const from = (await fs.lstat(layered).then(
      (s) => s.isDirectory(),
      () => false,
    ))
      ? layered
      : path.join(workspace, dir);
    await fs.mkdir(path.dirname(path.join(staging, 'workspace', dir)), { recursive: true });
    await fs.rename(from, path.join(staging, 'workspace', dir));
  }
  const homeDir = path.join(sandboxRoot(deps, sandbox.runId), 'home');
  for (const skipped of HOME_SKIPPED) await fs.rm(path.join(homeDir, skipped), { recursive: true, force: true });
  const home = (await fs.readdir(homeDir)).length > 0;
  if (home) await fs.rename(homeDir, path.join(staging, 'home'));
  if (dropped.length)
    await deps.runLog.append(
      runId,
      `[nightshift: setup left files that are not kept (only real directories with plain names are): ${dropped
        .slice(0, 10)
        .map((d) => JSON.stringify(d))
        .join(', ')}]\n`,
    );
  return { paths: kept, home };
}

/**
 * `rel` below `workspace` as an empty directory, made one component at a time; undefined when a component is not a real
 * directory.
 */
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

/** npm's download cache: what it installed is in the workspace already; keeping its tarballs would double the entry. */
const HOME_SKIPPED = ['.npm'];
