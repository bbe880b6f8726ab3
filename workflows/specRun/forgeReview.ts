// A run on a forge (RunInput.forge): after the review its branch is pushed and the pull request opened, and the
// forge's reviews and CI statuses for the pushed commit drive the loop.
import { upsertSearchAttributes } from '@temporalio/workflow';
import { HEAD_KEY, PULL_REQUEST_KEY } from '../searchAttributes';
import type { ForgeStatus, RunState } from '../../contracts/run';
import type { RunContext } from './context';
import { publishInput } from './inputs';
import { anyWorker } from './proxies';
import { stage } from './stages';

export function reviewedOnForge(ctx: RunContext): boolean {
  return ctx.input.forge !== undefined && Boolean(ctx.spec.deliver.pr);
}

/** Sign the new commits, push them to the run's branch (never forced) and open the pull request, or find it. */
export async function publishForReview(ctx: RunContext): Promise<void> {
  const { state } = ctx;
  const published = await stage(
    ctx,
    'publish',
    undefined,
    () => anyWorker.publishForReview(publishInput(ctx)),
    (r) => [true, r.summary],
  );
  state.checkpoint = published.checkpoint;
  state.pushedCommit = published.checkpoint.commit;
  state.pullRequest = published.pullRequest;
  // How the forge webhook finds the run a review or a status is about.
  upsertSearchAttributes([
    { key: PULL_REQUEST_KEY, value: String(published.pullRequest.number) },
    { key: HEAD_KEY, value: published.checkpoint.commit },
  ]);
}

/** The forge's CI on the pushed commit: what failed, and whether some context has not reported its end yet. */
export function forgeCi(state: RunState): { failed: ForgeStatus[]; pending: boolean } {
  const mine = (state.forgeStatuses ?? []).filter(
    (s) => state.pushedCommit !== undefined && s.sha === state.pushedCommit,
  );
  return {
    failed: mine.filter((s) => s.state === 'failure' || s.state === 'error'),
    pending: mine.some((s) => s.state === 'pending'),
  };
}

/** The failing statuses as the agent's next task: each context, its description and its link. */
export function ciFeedback(commit: string, failed: ForgeStatus[]): string {
  const lines = failed.map(
    (s) => `- ${s.context}: ${s.state}${s.description ? ` — ${s.description}` : ''}${s.url ? ` (${s.url})` : ''}`,
  );
  return `The forge's CI failed on the pushed commit ${commit.slice(0, 12)}:\n${lines.join('\n')}\n\nFix what it reports; your fix is pushed to the same pull request.`;
}

export function ciSummary(failed: ForgeStatus[]): string {
  return `CI failed: ${failed.map((s) => `${s.context}${s.description ? ` (${s.description})` : ''}`).join(', ')}`;
}
