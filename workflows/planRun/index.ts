// A plan (docs/plans.md): its tasks, each a child specRun of its own (`<plan>-<task>`), started as soon as every task
// it needs has passed, on a base that merges what they delivered; a task that fails skips what depends on it, and
// the others go on. The plan's history keeps each task's state only, never a child's.
import {
  ApplicationFailure,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RunInput, RunState, RunStatus } from '../../contracts/run';
import type { PlanTaskState } from '../../contracts/plan';
import { taskSpec } from '../../spec/plan';
import type { PlanTask } from '../../spec/schema';
import { stateQuery } from '../messages';
import { runSearchAttributes, STATUS_KEY } from '../searchAttributes';
import { specRun } from '../specRun';
import { anyWorker } from '../specRun/proxies';
import { errorMessage } from '../specRun/errors';
import { nowIso } from '../specRun/time';

export async function planRun(input: RunInput): Promise<RunState> {
  const { workflowId } = workflowInfo();
  const plan = input.spec;
  const tasks = plan.tasks ?? [];
  const state = initialState(input, workflowId);
  setHandler(stateQuery, () => state);
  setStatus(state, 'running_tasks');
  const byId = new Map(state.tasks!.map((t) => [t.id, t]));
  const running = new Map<string, Promise<void>>();

  const startReady = () => {
    for (const t of state.tasks!) {
      if (t.state !== 'waiting') continue;
      const blocker = t.needs.find((n) => ['failed', 'skipped'].includes(byId.get(n)!.state));
      if (blocker) {
        Object.assign(t, { state: 'skipped', reason: `it needs "${blocker}", which ${byId.get(blocker)!.state}` });
        continue;
      }
      if (!t.needs.every((n) => byId.get(n)!.state === 'passed')) continue;
      const task = tasks.find((x) => x.id === t.id)!;
      running.set(
        t.id,
        runTask(input, task, t, byId).finally(() => running.delete(t.id)),
      );
    }
  };
  startReady();
  while (running.size) {
    await Promise.race(running.values());
    // A skip can make another skip: settle until nothing changes.
    for (let before = ''; before !== JSON.stringify(state.tasks);) {
      before = JSON.stringify(state.tasks);
      startReady();
    }
  }
  const failed = state.tasks!.filter((t) => t.state === 'failed');
  if (failed.length) {
    setStatus(state, 'failed');
    const skipped = state.tasks!.filter((t) => t.state === 'skipped').map((t) => t.id);
    const reason = `task "${failed[0].id}" failed: ${failed[0].reason}${skipped.length ? `; skipped: ${skipped.join(', ')}` : ''}`;
    state.failure = { stage: 'agent', reason };
    throw ApplicationFailure.nonRetryable(reason, 'RunFailed', state);
  }
  setStatus(state, 'succeeded');
  return state;
}

/** The plan's status, in its state and in the search attribute the API lists runs by. */
function setStatus(state: RunState, status: RunStatus): void {
  state.status = status;
  state.updatedAt = nowIso();
  upsertSearchAttributes([{ key: STATUS_KEY, value: status }]);
}

function initialState(input: RunInput, workflowId: string): RunState {
  const startedAt = workflowInfo().startTime.toISOString();
  return {
    id: workflowId,
    title: input.spec.title,
    repo: input.spec.repo,
    branch: input.spec.branch ?? `nightshift/${workflowId}`,
    base: input.spec.base,
    status: 'queued',
    tasks: (input.spec.tasks ?? []).map((t) => ({
      id: t.id,
      needs: t.needs,
      state: 'waiting',
      runId: `${workflowId}-${t.id}`,
    })),
    iteration: 0,
    maxIterations: input.spec.limits.iterations,
    stages: [],
    checks: [],
    scopeViolations: [],
    decisions: [],
    reprovisions: 0,
    submittedBy: input.submittedBy,
    createdAt: startedAt,
    updatedAt: startedAt,
  };
}

/** One task as its own run, on its base; its record says how it ended. */
async function runTask(
  input: RunInput,
  task: PlanTask,
  record: PlanTaskState,
  byId: Map<string, PlanTaskState>,
): Promise<void> {
  const { workflowId } = workflowInfo();
  Object.assign(record, { state: 'running', startedAt: nowIso() });
  try {
    const needs = task.needs.map((n) => byId.get(n)!);
    let base = input.spec.base;
    let conflicts: string[] = [];
    if (needs.length) {
      base = `nightshift/${workflowId}/base-${task.id}`;
      ({ conflicts } = await anyWorker.mergeTaskBase({
        runId: workflowId,
        repo: input.spec.repo,
        base: input.spec.base,
        branches: needs.map((n) => n.branch!),
        target: base,
      }));
    }
    const spec = { ...taskSpec(input.spec, task), base, branch: `nightshift/${workflowId}/${task.id}` };
    const done = await executeChild(specRun, {
      workflowId: record.runId,
      typedSearchAttributes: runSearchAttributes(spec),
      args: [{ ...input, spec, plan: { id: workflowId, task: task.id, needs: task.needs, conflicts } }],
      // A plan cancelled, rejected or timed out asks each task to cancel: each tears its sandbox down itself.
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    });
    Object.assign(record, { state: 'passed', branch: done.branch, commit: done.finalCommit });
  } catch (err) {
    if (isCancellation(err)) throw err;
    Object.assign(record, { state: 'failed', reason: childFailure(err) });
  } finally {
    record.endedAt = nowIso();
  }
}

/** What a failed task's run said: its own failure line, from the state it carried out. */
function childFailure(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const details = cause instanceof ApplicationFailure ? (cause.details?.[0] as RunState | undefined) : undefined;
  if (details?.failure) return `${details.failure.stage}: ${details.failure.reason}`;
  return errorMessage(cause ?? err);
}
