// The run's bookkeeping: its status (also a search attribute and Temporal Web's current details), each stage's record.
import {
  ApplicationFailure,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setCurrentDetails,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { taskStatusSignal } from '../messages';
import { STATUS_KEY } from '../searchAttributes';
import type { RunStatus, StageName, StageRecord } from '../../contracts/run';
import type { RunContext } from './context';
import { errorMessage } from './errors';
import type { Outcome } from './outcomes';
import { nowIso } from './time';

export function setStatus({ state, input }: RunContext, status: RunStatus): void {
  state.status = status;
  state.updatedAt = nowIso();
  upsertSearchAttributes([{ key: STATUS_KEY, value: status }]);
  setCurrentDetails(`**${status}** · iteration ${state.iteration}/${state.maxIterations}`);
  // A plan's task tells its plan, which shows it in its graph (and, for the integration, as the plan's own status).
  if (input.plan)
    getExternalWorkflowHandle(input.plan.id)
      .signal(taskStatusSignal, { task: input.plan.task, status })
      .catch((err) => log.warn('the plan was not told', { status, error: errorMessage(err) }));
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
