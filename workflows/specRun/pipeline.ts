// The stages in order: provision → setup (when the spec has one) → iterations (agent, scope, checks, review, approval,
// rebase) → proof → deliver.
import { patched } from '@temporalio/workflow';
import { FREE_WORKSPACE_AFTER_REVIEW, REBASE_BEFORE_DELIVERY, SIGNED_COMMITS } from '../patches';
import type { RunStatus } from '../../contracts/run';
import { awaitApproval } from './approval';
import { awaitBudget } from './budget';
import type { RunContext } from './context';
import { setupEnvironment } from './setup';
import { iterationFeedback, needsConflictFeedback } from './feedback';
import { deliverInput, signInput } from './inputs';
import { iteration } from './iteration';
import { anyWorker } from './proxies';
import { rebaseOntoBase } from './rebase';
import { PLANNING_TASK } from '../../spec/plan';
import { proposeTasks } from './planning';
import { publishForReview, reviewedOnForge } from './forgeReview';
import { fail, setStatus, stage } from './stages';
import { ensureWorkspace, teardown } from './workspace';

/** The stages; returns how the run ended unless it failed (throws). */
export async function pipeline(ctx: RunContext): Promise<RunStatus> {
  await stage(
    ctx,
    'provision',
    'provisioning',
    () => ensureWorkspace(ctx),
    () => [true, `workspace on ${ctx.workspace?.worker}, base ${ctx.state.baseCommit?.slice(0, 12)}`],
  );
  // A `tasks: auto` plan's planning run ends with its proposal: a person judges it, no check (docs/plans.md).
  if (ctx.input.plan?.task === PLANNING_TASK) return proposeTasks(ctx);
  if (ctx.spec.setup) await setupEnvironment(ctx);
  const ended = await iterate(ctx);
  if (ended) return ended;
  await deliver(ctx);
  return 'succeeded';
}

/**
 * Agent iterations, each with the problems of the last as feedback, until one's change passes every stage and (when
 * the spec asks) a human approves it; returns how the run ended when it ended before delivery.
 */
async function iterate(ctx: RunContext): Promise<RunStatus | undefined> {
  const { spec, state, input } = ctx;
  // A plan's task starts on its needs' merge: a conflict there is its first feedback, and so is a person's request
  // when the task runs again.
  const conflicts = input.plan?.conflicts ?? [];
  const first = [
    ...(conflicts.length ? [needsConflictFeedback(input.plan!.needs, conflicts)] : []),
    ...(input.plan?.feedback ? [input.plan.feedback] : []),
  ];
  let feedback = first.length ? first.join('\n\n') : undefined;
  for (;;) {
    state.iteration++;
    state.feedback = feedback;
    const problems = await iteration(ctx, feedback);
    const spent = problems.find((p) => p.stage === 'budget');
    if (spent) {
      const verdict = await awaitBudget(ctx, spent.text, spent.until);
      if ('ended' in verdict) return verdict.ended;
      feedback = verdict.feedback;
      continue;
    }
    if (problems.length > 0) {
      if (state.iteration >= state.maxIterations) fail(ctx, problems[0].stage, problems[0].text);
      feedback = iterationFeedback(state.iteration, problems);
      continue;
    }
    const onForge = reviewedOnForge(ctx);
    if (onForge) await publishForReview(ctx);
    if (spec.approval.required) {
      const verdict = await awaitApproval(ctx);
      if (verdict !== 'approved') {
        if ('ended' in verdict) return verdict.ended;
        if (verdict.ci && state.iteration >= state.maxIterations) fail(ctx, 'ci', verdict.ci);
        feedback = verdict.feedback;
        continue;
      }
    }
    // Nothing after the review needs the workspace (the rest works from the checkpoint): give the worker's sandbox
    // slot to the next run now, not after delivery.
    if (patched(FREE_WORKSPACE_AFTER_REVIEW)) await teardown(ctx);
    // On a forge the pull request is where the base is merged: a rebase would need a forced push.
    if (onForge || !patched(REBASE_BEFORE_DELIVERY)) return undefined;
    feedback = await rebaseOntoBase(ctx);
    if (feedback === undefined) return undefined;
    // The base moving is no fault of the agent's: like a human's request, it gets a fresh budget.
    state.maxIterations = state.iteration + spec.limits.iterations;
  }
}

/** Sign the commits and the proof, then deliver the branch. */
async function deliver(ctx: RunContext): Promise<void> {
  const { input, state } = ctx;
  setStatus(ctx, 'delivering');
  const signing = patched(SIGNED_COMMITS);
  const proof = async () => {
    // First, so the proof and the delivery both name the signed commit.
    if (signing) state.checkpoint = await anyWorker.signCommits(signInput(ctx));
    state.finalCommit = state.checkpoint!.commit;
    return anyWorker.writeProof({ input, state });
  };
  const signed = (id: string) =>
    `signed ${signing ? `${state.finalCommit!.slice(0, 12)} and ` : ''}proof.tar.gz ${id.slice(0, 12)}`;
  state.proofId = await stage(ctx, 'proof', undefined, proof, (id) => [true, signed(id)]);
  const delivery = await stage(
    ctx,
    'deliver',
    undefined,
    () => anyWorker.deliverBranch(deliverInput(ctx)),
    (r) => [true, r.summary],
  );
  state.pullRequest = delivery.pullRequest;
}
