// One forge webhook delivery, carried out durably: its workflow id is the delivery's, so a replayed delivery starts
// nothing twice. A worker reads the event with the repo's credential (who may do what, the repo's .nightshift.yml);
// the workflow then starts the run, or signals the run's decision.
import { getExternalWorkflowHandle, proxyActivities, startChild } from '@temporalio/workflow';
import type { SharedQueueActivities } from '../activities';
import type { ForgeEventInput } from '../contracts/forge';
import { approveSignal, raiseBudgetSignal, requestChangesSignal } from './messages';
import { runSearchAttributes } from './searchAttributes';
import { specRun } from './specRun';

const forge = proxyActivities<Pick<SharedQueueActivities, 'interpretForgeEvent' | 'commentOnForge'>>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 8 },
});

/** What came of the delivery, in one line (Temporal Web shows it as the result). */
export async function forgeEvent(input: ForgeEventInput): Promise<string> {
  const action = await forge.interpretForgeEvent(input);
  if ('ignored' in action) {
    if (action.tell) await forge.commentOnForge({ repo: input.repo, ...action.tell });
    return `ignored: ${action.ignored}`;
  }
  if ('decide' in action) {
    const { runId, kind, decision } = action.decide;
    await getExternalWorkflowHandle(runId).signal(kind === 'approve' ? approveSignal : requestChangesSignal, decision);
    return `${kind} by ${decision.by} sent to ${runId}`;
  }
  // No patch: only a `budget` event (a `/nightshift budget` comment, read since this branch) interprets to a raise,
  // so no history recorded before it can reach it; the branches above send what they sent.
  if ('raise' in action) {
    const { runId, decision } = action.raise;
    await getExternalWorkflowHandle(runId).signal(raiseBudgetSignal, decision);
    return `raiseBudget by ${decision.by} sent to ${runId}`;
  }
  const { runId, run, issue, link } = action.start;
  try {
    await startChild(specRun, {
      workflowId: runId,
      args: [run],
      // The run outlives this delivery's workflow.
      parentClosePolicy: 'ABANDON',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: runSearchAttributes(run.spec),
      staticSummary: run.spec.title,
    });
  } catch (err) {
    // @temporalio/workflow does not export the class; its name is the SDK's.
    if ((err as Error).name === 'WorkflowExecutionAlreadyStartedError')
      return `run ${runId} was already started for issue #${issue}`;
    throw err;
  }
  await forge.commentOnForge({
    repo: input.repo,
    issue,
    body: `Nightshift started run [\`${runId}\`](${link}) for this issue. Its pull request will be linked here.`,
  });
  return `started ${runId} for issue #${issue}`;
}
