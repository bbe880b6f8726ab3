import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from '../../runtime/deps';
import { pushToRemote, stageInMirror } from '../../git/remotePush';
import { runPageUrl } from '../../config/runPage';
import { signCommits } from '../../proof/commitSigning';
import { forgeCall } from '../../forges/connect';
import type { PublishInput, Published } from '../../contracts/forge';
import { forgeOpener } from './forgeOpener';

/**
 * Sign the commits after the last pushed one, push the branch (never forced) and open the pull request, or find
 * the one a retry or an earlier iteration opened. The signing date comes from the workflow, so a retry signs the
 * same commits again and its push finds them there.
 */
export function publishForReview(deps: ActivityDeps) {
  const open = forgeOpener(deps);
  return async (input: PublishInput): Promise<Published> => {
    const { remote, forge } = open(input.repo);
    const checkpoint = await signCommits(deps, input);
    if (!checkpoint.bundleId)
      throw ApplicationFailure.nonRetryable('nothing to publish: the run made no commit', 'NothingToDeliver');
    await stageInMirror(deps, remote, input.runId, input.branch, checkpoint.bundleId);
    const pushed = await pushToRemote(deps, remote, input.branch, checkpoint.commit);
    const pr = await forgeCall(() =>
      forge.openPullRequest({
        branch: input.branch,
        base: input.base,
        commit: checkpoint.commit,
        title: input.title,
        body: `${input.body}\n\n[Run ${input.runId}](${runPageUrl(deps.publicUrl, input.runId)}) on Nightshift`,
        draft: input.draft,
      }),
    );
    if (pr.created && input.issue)
      await forgeCall(() => forge.comment(input.issue!, `Nightshift opened #${pr.number} for this issue.`));
    const summary = `${pushed}; ${pr.created ? 'opened' : 'updated'} pull request #${pr.number} ${pr.url}`;
    await deps.runLog.append(input.runId, `\n=== publish: ${summary} ===\n`);
    return { checkpoint, pullRequest: { number: pr.number, url: pr.url }, summary };
  };
}
