import { runChecks } from './checks';
import type { RunContext } from './context';
import { rebaseConflictFeedback, rebasedChecksFeedback } from './feedback';
import { rebaseInput } from './inputs';
import { rebaseOutcome } from './outcomes';
import { anyWorker } from './proxies';
import { stage } from './stages';
import { teardown } from './workspace';

/**
 * Put the approved branch on its base's current tip: other work (another run's, say) may have landed there while
 * this run worked or waited. A clean rebase is checked again; returns feedback for another agent iteration when the
 * rebase conflicts or a check fails on the rebased result.
 */
export async function rebaseOntoBase(ctx: RunContext): Promise<string | undefined> {
  const { state } = ctx;
  const from = state.baseCommit!;
  const base = state.base!;
  const rebase = await stage(
    ctx,
    'rebase',
    'delivering',
    () => anyWorker.rebaseOntoBase(rebaseInput(ctx)),
    (r) => rebaseOutcome(r, base, from),
  );
  if (!rebase.moved) return undefined;
  // A workspace still held is on the old base: the next stage provisions one from the rebased checkpoint.
  await teardown(ctx);
  state.baseCommit = rebase.baseCommit;
  state.checkpoint = rebase.checkpoint;
  state.diffId = rebase.diffId;
  const move = { base, from, to: rebase.baseCommit };
  if (rebase.conflicts.length) return rebaseConflictFeedback(move, rebase.conflicts);
  const problems = await runChecks(ctx);
  if (!problems.length) return undefined;
  return rebasedChecksFeedback(move, problems);
}
