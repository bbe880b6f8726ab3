import { buildReviewPrompt, parseReviewVerdict } from '../../agents/review';
import type { ActivityDeps } from '../../runtime/deps';
import { throwIfCancelled, withHeartbeat } from '../../runtime/heartbeat';
import type { AgentReviewInput, AgentReview } from '../../contracts/agent';
import { runAgentCli } from './agentCli';
import { workspaceAt } from './workspaceAt';

/** A second, read-only agent pass over the diff; its verdict and findings join the rule review's. */
export function reviewWithAgent(deps: ActivityDeps) {
  return async (input: AgentReviewInput): Promise<AgentReview> => {
    return withHeartbeat(async () => {
      const { sandbox, repo, branch } = await workspaceAt(deps, input, input.commit);
      const diff = (await deps.store.get(input.diffId)).toString('utf8');
      const prompt = buildReviewPrompt({ title: input.title, task: input.task, diff });
      const cli = await runAgentCli(deps, sandbox, {
        ...input,
        prompt,
        promptName: 'review.md',
        header: `agent review, iteration ${input.iteration}`,
      });
      throwIfCancelled();
      // The reviewer only reads: whatever it wrote is discarded, and the report says so.
      const touched = await repo.touched();
      if (touched.length) await repo.layOut(branch, input.commit);
      const { verdict, findings } = parseReviewVerdict(cli.summary?.finalMessage ?? cli.logTail);
      const report = {
        verdict,
        findings,
        reviewer: {
          kind: input.agent.kind,
          model: input.agent.model,
          summary: cli.summary,
          exitCode: cli.exitCode,
          logId: cli.logId,
          transcriptId: cli.transcriptId,
        },
        discardedWrites: touched,
      };
      return {
        verdict,
        findings,
        reportId: await deps.store.put(JSON.stringify(report, null, 2)),
        ...(cli.modelUsage ? { modelUsage: cli.modelUsage } : {}),
        ...(cli.budgetExhausted ? { budgetExhausted: cli.budgetExhausted } : {}),
      };
    });
  };
}
