import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureSigningKey } from './keys';
import { signCommitObject } from './signedCommit';
import { withArtifactFile } from '../store/artifacts';
import type { Checkpoint } from '../contracts/run';
import type { ActivityDeps } from '../runtime/deps';
import { git } from '../git/git';
import { gitFailure } from '../git/failure';
import { withRepoSource } from '../git/mirror';
import { storeBranchBundle } from '../workspaces/sandboxes';
import type { SignInput } from '../contracts/proof';

/**
 * The run's commits signed with the server's key (git's SSH signing), in a scratch repo from the checkpoint bundle:
 * each commit after the base is written again with a signature, on its rewritten parents, committed now. Returns
 * the checkpoint of the signed branch. The key stays on the worker: the workflow gets commits and artifact ids.
 * A retry signs again (another commit id, as valid); the run goes on with the one returned.
 */
export async function signCommits(deps: ActivityDeps, input: SignInput): Promise<Checkpoint> {
  const { bundleId } = input.checkpoint;
  // No commit of the run's own: delivery says so.
  if (!bundleId) return input.checkpoint;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `nightshift-sign-${input.runId}-`));
  const repo = (args: string[]) => git(dir, ['--git-dir', path.join(dir, 'git'), ...args]);
  try {
    await repo(['init', '--quiet', '--bare']);
    // The bundle's prerequisite, by its id: the base branch may have moved, or been rewritten, since.
    // (A registered remote: from this worker's mirror.)
    await withRepoSource(deps, input.repo, undefined, (source) =>
      repo(['fetch', '--quiet', '--no-write-fetch-head', source.path, `${input.baseCommit}:refs/nightshift/base`]),
    );
    await withArtifactFile(deps.store, bundleId, (bundle) =>
      repo([
        'fetch',
        '--quiet',
        '--no-write-fetch-head',
        bundle,
        `refs/heads/${input.branch}:refs/heads/${input.branch}`,
      ]),
    );
    const after = [input.baseCommit, ...(input.since ? [input.since] : []), ...(input.keep ?? [])].map((c) => `^${c}`);
    const commits = (await repo(['rev-list', '--reverse', '--topo-order', input.checkpoint.commit, ...after]))
      .split('\n')
      .filter(Boolean);
    if (commits.length === 0) return input.checkpoint;
    const key = ensureSigningKey(deps.home);
    const rewrite = {
      parents: new Map<string, string>(),
      committedAt: input.signedAt ? new Date(input.signedAt) : new Date(),
    };
    const objectFile = path.join(dir, 'commit');
    for (const commit of commits) {
      await fs.writeFile(objectFile, signCommitObject(await repo(['cat-file', 'commit', commit]), rewrite, key));
      rewrite.parents.set(commit, (await repo(['hash-object', '-t', 'commit', '-w', '--', objectFile])).trim());
    }
    const tip = rewrite.parents.get(input.checkpoint.commit)!;
    await repo(['update-ref', `refs/heads/${input.branch}`, tip]);
    const signedBundle = await storeBranchBundle(deps, repo, input.branch, input.baseCommit, input.runId);
    await deps.runLog.append(
      input.runId,
      `\n=== sign: ${commits.length} commit${commits.length === 1 ? '' : 's'} signed with ${key.keyId}, ${input.checkpoint.commit.slice(0, 12)} is now ${tip.slice(0, 12)} ===\n`,
    );
    return { ...input.checkpoint, commit: tip, bundleId: signedBundle, afterStage: 'proof' };
  } catch (err) {
    throw gitFailure(err, { type: 'SigningFailed', what: "could not sign the run's commits" });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
