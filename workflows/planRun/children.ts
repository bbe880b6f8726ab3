// What the plan's children share: how one is started, what a failed one said, and the plan's own status.
import { ApplicationFailure, ParentClosePolicy, upsertSearchAttributes } from '@temporalio/workflow';
import type { RunInput, RunState, RunStatus, StageName } from '../../contracts/run';
import type { Spec } from '../../spec/schema';
import { runSearchAttributes, STATUS_KEY } from '../searchAttributes';
import { errorMessage } from '../specRun/errors';
import { nowIso } from '../specRun/time';

/** How a child run is started: its id, its search attributes, and cancelled with its plan. */
export function childOptions(workflowId: string, spec: Spec, input: RunInput) {
  return {
    workflowId,
    typedSearchAttributes: runSearchAttributes(spec),
    args: [input] as [RunInput],
    // A plan cancelled asks each of its runs to cancel: each tears its sandbox down itself.
    parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
  };
}

/** The plan fails, naming why: its state is the failure's details, as a run's is. */
export function planFailed(state: RunState, stage: StageName, reason: string): never {
  setStatus(state, 'failed');
  state.failure = { stage, reason };
  throw ApplicationFailure.nonRetryable(reason, 'RunFailed', state);
}

/** The plan's status, in its state and in the search attribute the API lists runs by. */
export function setStatus(state: RunState, status: RunStatus): void {
  state.status = status;
  state.updatedAt = nowIso();
  upsertSearchAttributes([{ key: STATUS_KEY, value: status }]);
}

/** What a failed task's run said: its own failure line, from the state it carried out. */
export function childFailure(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const details = cause instanceof ApplicationFailure ? (cause.details?.[0] as RunState | undefined) : undefined;
  if (details?.failure) return `${details.failure.stage}: ${details.failure.reason}`;
  return errorMessage(cause ?? err);
}
