import { ApplicationFailure } from '@temporalio/activity';
import type { RemoteRepo } from '../config/remotes';
import { withArtifactFile } from '../store/artifacts';
import type { ActivityDeps } from '../runtime/deps';
import { git, GitError, remoteGit } from './git';
import { gitFailure } from './failure';
import { mirrorDir, withMirror, withRemoteAccess, type MirrorDeps } from './mirror';

/** Where a run's commit waits in the worker's mirror before its push: a namespace the mirror's fetch never prunes. */
export const deliveryRef = (branch: string) => `refs/nightshift/deliver/${branch}`;

/**
 * The run's commit (from its checkpoint bundle) into this worker's mirror of `remote`, fetched first so the
 * bundle's base is there.
 */
export async function stageInMirror(
  deps: MirrorDeps & Pick<ActivityDeps, 'store'>,
  remote: RemoteRepo,
  runId: string,
  branch: string,
  bundleId: string,
): Promise<void> {
  await withMirror(deps, remote, runId, (sync) =>
    withArtifactFile(deps.store, bundleId, (bundle) =>
      git(sync.dir, [
        'fetch',
        '--quiet',
        '--no-write-fetch-head',
        bundle,
        `+refs/heads/${branch}:${deliveryRef(branch)}`,
      ]),
    ),
  ).catch((err) => {
    throw gitFailure(err, {
      type: 'DeliveryFailed',
      what: `could not stage the run's commit in the mirror of ${remote.name}`,
    });
  });
}

/**
 * Push `commit` (already in this worker's mirror of `remote`, see `stageInMirror`) to `refs/heads/<branch>` at the
 * registered URL, with the credential; never forced. It looks first (ls-remote): a branch already at the commit is
 * left alone, so a retried delivery pushes once. A push the remote rejects (the branch moved, a hook declined) fails
 * the run with git's reason on one line; an unreachable remote is worth another attempt. Returns what happened.
 */
export async function pushToRemote(
  deps: MirrorDeps,
  remote: RemoteRepo,
  branch: string,
  commit: string,
): Promise<string> {
  const dir = mirrorDir(deps.home, deps.self.worker, remote.name);
  const ref = `refs/heads/${branch}`;
  return withRemoteAccess(deps, remote, async (access) => {
    const listed = await remoteGit(dir, ['ls-remote', '--', remote.url, ref], access).catch((err) => {
      throw gitFailure(err, {
        type: 'RemoteUnreachable',
        what: `cannot reach ${remote.name} (${remote.url})`,
        retryable: true,
      });
    });
    if (listed.split(/\s/)[0] === commit) return `${remote.name} already has ${branch} at ${commit.slice(0, 12)}`;
    await remoteGit(dir, ['push', '--quiet', '--no-verify', '--', remote.url, `${commit}:${ref}`], access).catch(
      (err) => {
        if (err instanceof GitError && /\[(remote )?rejected\]/.test(err.stderr)) {
          throw ApplicationFailure.nonRetryable(
            `push of ${branch} to ${remote.name} (${remote.url}) was rejected: ${pushReason(err.stderr)}`,
            'PushRejected',
          );
        }
        throw gitFailure(err, {
          type: 'RemoteUnreachable',
          what: `cannot push ${branch} to ${remote.name} (${remote.url})`,
          retryable: true,
        });
      },
    );
    return `pushed ${branch} to ${remote.name} (${remote.url})`;
  });
}

/** git's rejection and the forge's own words (`remote:` lines), on one line; hints are advice for a terminal. */
function pushReason(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('hint:') && !l.startsWith('To ') && !l.startsWith('error: failed to push'));
  return lines.join(' ').replace(/\s+/g, ' ').slice(0, 500) || 'rejected';
}
