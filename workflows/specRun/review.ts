// The review of an iteration's change: the rules, then, when the spec asks for one, the agent reviewer.
import type { ReviewResult } from '../../contracts/run';
import { integrityFindings, unverifiedNotes } from './checks';
import type { RunContext } from './context';
import { reviewProblem, type Problem } from './feedback';
import { agentReviewInput } from './inputs';
import { reviewOutcome } from './outcomes';
import { anyWorker } from './proxies';
import { fail, stage } from './stages';
import { MINUTE } from './time';
import { inWorkspace } from './workspace';

/** The review stage; its findings as problems for the agent. */
export async function review(ctx: RunContext, diffId: string, changedFiles: string[]): Promise<Problem[]> {
  const result = await stage(ctx, 'review', 'reviewing', () => reviewChanges(ctx, diffId, changedFiles), reviewOutcome);
  ctx.state.review = result;
  return result.findings.map((f) => ({ stage: 'review', text: reviewProblem(f) }));
}

/** The rule review, then, when the spec asks for one, the agent reviewer's pass; their findings together. */
async function reviewChanges(ctx: RunContext, diffId: string, changedFiles: string[]): Promise<ReviewResult> {
  const { spec, state, sandboxMs } = ctx;
  const { maxDiffLines, allowBinaries, allowEnvironmentReads } = spec.review;
  const holdoutRuns = spec.checks.filter((c) => c.holdout).map((c) => c.run);
  const byRules = await anyWorker.reviewChanges({
    diffId,
    changedFiles,
    maxDiffLines,
    allowBinaries,
    allowEnvironmentReads,
    holdoutRuns,
  });
  // Secrets the change adds were found before its diff was stored redacted.
  // So were changes to the test harness, which the checks did not run.
  // And the checks' tests held against the base's (missing, skipped, a canary reported passing).
  const blocking = [
    ...(state.agent?.secretFindings ?? []),
    ...(state.agent?.harnessFindings ?? []),
    ...integrityFindings(state.checks),
  ];
  const notes = unverifiedNotes(state.checks);
  const rules: ReviewResult = {
    ...(blocking.length ? { ...byRules, findings: [...blocking, ...byRules.findings], verdict: 'changes' } : byRules),
    ...(notes.length ? { notes } : {}),
  };
  if (!spec.review.agent) return rules;
  const byAgent = await inWorkspace(ctx, sandboxMs + 5 * MINUTE, `agent review, iteration ${state.iteration}`, (a) =>
    a.reviewWithAgent(agentReviewInput(ctx, diffId)),
  );
  if (byAgent.modelUsage) state.modelUsage = byAgent.modelUsage;
  if (byAgent.budgetExhausted) fail(ctx, 'review', byAgent.budgetExhausted);
  const findings = [...rules.findings, ...byAgent.findings];
  return { ...rules, findings, verdict: findings.length ? 'changes' : 'approve', reportId: byAgent.reportId };
}
