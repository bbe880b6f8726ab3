import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fs } from 'node:fs';
import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from '../runtime/deps';
import type { Spec } from '../spec/schema';
import type { Sandbox } from '../sandbox/sandbox';
import { policyFor } from '../sandbox/policy';
import { type Git, RunRepo } from '../git/git';
import { CheckoutCache } from '../git/checkouts';
import { SANDBOX_UID } from '../sandbox/layout';
import { unofferedToolchains } from '../sandbox/toolchains';

/** Where this worker keeps its sandboxes: one folder per worker, so a dead worker's leftovers can be swept. */
export function workerDir(home: string, worker: string): string {
  return path.join(home, 'work', worker);
}

export function sandboxRoot(deps: ActivityDeps, runId: string): string {
  return path.join(workerDir(deps.home, deps.self.worker), runId);
}

/** The run's sandbox on this worker, with the driver and limits of its spec. */
export async function openSandbox(deps: ActivityDeps, runId: string, sandbox: Spec['sandbox']): Promise<Sandbox> {
  const driver = deps.drivers[sandbox.driver];
  if (!driver) {
    const offered = Object.keys(deps.drivers).join(', ') || 'none';
    throw ApplicationFailure.nonRetryable(
      `worker ${deps.self.worker} has no ${sandbox.driver} sandbox driver (it offers: ${offered}); see \`nightshift doctor\``,
      'NoSandboxDriver',
    );
  }
  // Checked at submit, and again here: the run may have been started elsewhere, or this worker offer others.
  const [unoffered] = unofferedToolchains(sandbox.toolchains ?? [], deps.toolchains);
  if (unoffered)
    throw ApplicationFailure.nonRetryable(
      `worker ${deps.self.worker} offers no toolchain ${unoffered} (it offers: ${Object.keys(deps.toolchains).join(', ') || 'none'}; NIGHTSHIFT_TOOLCHAINS); the spec asks for it in sandbox.toolchains`,
      'ToolchainNotOffered',
    );
  return driver.open({ runId, root: sandboxRoot(deps, runId), ...policyFor(sandbox, deps.egressInternal) });
}

/**
 * Refuse the image the run's sandbox starts from when this worker does not offer it (docs/images.md): not on its
 * NIGHTSHIFT_DOCKER_IMAGES, or missing a piece of the image contract; or an image asked of a driver without images.
 */
export async function admitImage(deps: ActivityDeps, sandbox: Spec['sandbox']): Promise<void> {
  const driver = deps.drivers[sandbox.driver];
  if (!driver) return; // openSandbox says so
  const why = driver.refusal
    ? await driver.refusal(sandbox)
    : sandbox.image && `the ${driver.name} driver starts from no image: sandbox.image is for the docker driver`;
  if (why) throw ApplicationFailure.nonRetryable(why, 'ImageRefused');
}

/** The branch's commits above `baseCommit` as a git bundle in the artifact store; none when there are none. */
export async function storeBranchBundle(
  deps: ActivityDeps,
  git: Git,
  branch: string,
  baseCommit: string,
  runId: string,
): Promise<string | undefined> {
  const commit = (await git(['rev-parse', `refs/heads/${branch}`])).trim();
  if (commit === baseCommit) return undefined;
  const file = path.join(os.tmpdir(), `nightshift-${runId}-${process.pid}.bundle`);
  try {
    await git(['bundle', 'create', '--quiet', file, `refs/heads/${branch}`, `^${baseCommit}`]);
    return await deps.store.putFile(file);
  } finally {
    await fs.rm(file, { force: true });
  }
}

/** Where a sandbox's workspace overlay keeps what was written over the checkout (`upper/`, `work/`). */
export const workspaceLayer = (root: string) => path.join(root, 'workspace-layer');

/**
 * The workspace at `commit` on `branch`, laid over a kept checkout of `base` (git/checkouts.ts): git writes
 * only what differs from it, into the sandbox's own layer (`<root>/workspace-layer`, outside every mount).
 */
export async function layOutOver(
  deps: Pick<ActivityDeps, 'home' | 'self'>,
  repo: RunRepo,
  driver: Spec['sandbox']['driver'],
  branch: string,
  commit: string,
  base: string | undefined,
): Promise<void> {
  if (!base) return repo.layOut(branch, commit);
  const checkouts = new CheckoutCache(path.join(workerDir(deps.home, deps.self.worker), '.checkouts'));
  const atBase = await checkouts.layOver(
    repo,
    base,
    workspaceLayer(repo.root),
    driver === 'docker' ? SANDBOX_UID : undefined,
  );
  await repo.layOut(branch, commit, { fresh: true, checkedOut: atBase && commit === base });
}

/** The run's repository on this worker: its git directory beside the sandbox, the workspace its work tree. */
export function runRepo(deps: ActivityDeps, sandbox: Sandbox): RunRepo {
  return new RunRepo(sandboxRoot(deps, sandbox.runId), sandbox.workspace);
}

/**
 * The run's sandbox with nothing of an earlier attempt in it (a retried or moved provision, a check's sandbox made
 * again): torn down first, its container (which may hold an earlier workspace mounted) and overlays gone too.
 */
export async function freshSandbox(deps: ActivityDeps, runId: string, policy: Spec['sandbox']): Promise<Sandbox> {
  await (await openSandbox(deps, runId, policy)).teardown();
  return openSandbox(deps, runId, policy);
}
