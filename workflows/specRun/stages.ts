// The run's bookkeeping: its status (also a search attribute and Temporal Web's current details), each stage's record.
import {
  ApplicationFailure,
  CancellationScope,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setCurrentDetails,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { campaignRunSignal, taskStatusSignal } from '../messages';
import type { CampaignRunReport } from '../../contracts/campaign';
import { STATUS_KEY } from '../searchAttributes';
import { FINAL_STATUSES, type RunState, type RunStatus, type StageName, type StageRecord } from '../../contracts/run';
import type { RunContext } from './context';
import { errorMessage } from './errors';
import type { Outcome } from './outcomes';
import { nowIso } from './time';

export function setStatus(ctx: RunContext, status: RunStatus): void {
  const { state, input } = ctx;
  state.status = status;
  state.updatedAt = nowIso();
  upsertSearchAttributes([{ key: STATUS_KEY, value: status }]);
  setCurrentDetails(`**${status}** · iteration ${state.iteration}/${state.maxIterations}`);
  // A plan's task tells its plan, which shows it in its graph (and, for the integration, as the plan's own status).
  if (input.plan)
    getExternalWorkflowHandle(input.plan.id)
      .signal(taskStatusSignal, { task: input.plan.task, status })
      .catch((err) => log.warn('the plan was not told', { status, error: errorMessage(err) }));
  // A campaign's run tells its campaign, at its end with what it delivered: a cancelled run too, so the signal is
  // sent outside the run's (cancelled) scope. The campaign learns of its runs' ends from these alone.
  // The run stays open until the campaign has it.
  const { campaign } = input;
  if (campaign)
    ctx.notifications.push(
      CancellationScope.nonCancellable(() =>
        getExternalWorkflowHandle(campaign.id).signal(campaignRunSignal, campaignReport(state, status)),
      ).catch((err) => log.warn('the campaign was not told', { status, error: errorMessage(err) })),
    );
}

function campaignReport(state: RunState, status: RunStatus): CampaignRunReport {
  if (!FINAL_STATUSES.includes(status)) return { runId: state.id, status };
  return {
    runId: state.id,
    status,
    branch: state.branch,
    ...(state.finalCommit ? { commit: state.finalCommit } : {}),
    ...(state.proofId ? { proofId: state.proofId } : {}),
    ...(state.pullRequest ? { pullRequest: state.pullRequest } : {}),
    ...(state.failure ? { reason: `${state.failure.stage}: ${state.failure.reason}` } : {}),
    requestedChanges: state.decisions.filter((d) => d.kind === 'requestChanges').length,
  };
}

/** Record a stage's timing and one-line outcome around `body`. */
export async function stage<T>(
  ctx: RunContext,
  name: StageName,
  status: RunStatus | undefined,
  body: () => Promise<T>,
  outcome: (r: T) => Outcome,
): Promise<T> {
  const { state } = ctx;
  if (status) setStatus(ctx, status);
  state.stage = name;
  const record: StageRecord = { stage: name, iteration: state.iteration, status: 'running', startedAt: nowIso() };
  state.stages.push(record);
  const started = Date.now();
  const finish = (ok: boolean, summary: string) => {
    record.status = ok ? 'passed' : 'failed';
    record.endedAt = nowIso();
    record.durationMs = Date.now() - started;
    record.summary = summary;
    state.updatedAt = record.endedAt;
  };
  try {
    const result = await body();
    finish(...outcome(result));
    return result;
  } catch (err) {
    finish(false, isCancellation(err) ? 'cancelled' : errorMessage(err));
    throw err;
  }
}

/** End the run as failed in `stageName`, for `reason`. */
export function fail({ state }: RunContext, stageName: StageName, reason: string): never {
  state.failure = { stage: stageName, reason };
  throw ApplicationFailure.nonRetryable(`${stageName}: ${reason}`, 'RunFailed');
}
