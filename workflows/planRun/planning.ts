// `tasks: auto` (docs/plans.md): the plan's agent proposes the tasks in a planning run of its own, and the plan waits
// for a person to approve the list, correct it, or reject it, before any task runs.
import { condition, executeChild, isCancellation, log, setHandler } from '@temporalio/workflow';
import type { PlanTaskState } from '../../contracts/plan';
import type { Decision, RunInput, RunState, RunStatus } from '../../contracts/run';
import { DEFAULT_PLAN_MAX_TASKS, isRunnableTaskList, planningSpec, PLANNING_TASK } from '../../spec/plan';
import type { PlanTask } from '../../spec/schema';
import { approveSignal, editTasksSignal, rejectSignal } from '../messages';
import { specRun } from '../specRun';
import { recorded } from '../specRun/handlers';
import { runNotice } from '../specRun/inputs';
import { deliverNotice } from '../specRun/notify';
import { humanDuration, nowIso } from '../specRun/time';
import { childFailure, childOptions, planFailed, setStatus } from './children';

/** A person's decision on the proposed tasks, taken by the handlers while the plan awaits it. */
export interface TaskListDecision {
  decision?: Decision;
}

/**
 * Approve, reject and correct, on the plan itself while it awaits approval of its tasks; set before the plan's first
 * await. Once its tasks run, a decision is the integration's (the API sends it there).
 */
export function registerTaskListHandlers(input: RunInput, state: RunState, pending: TaskListDecision): void {
  const awaiting = (what: string) => {
    if (state.status === 'awaiting_plan_approval' && !pending.decision) return true;
    log.warn(`${what} ignored: the plan is not awaiting approval of its tasks`, { status: state.status });
    return false;
  };
  setHandler(approveSignal, (arg) => {
    if (awaiting('approval')) pending.decision = recorded(state, 'approve', arg);
  });
  setHandler(rejectSignal, (arg) => {
    if (awaiting('rejection')) pending.decision = recorded(state, 'reject', arg);
  });
  setHandler(editTasksSignal, (arg) => {
    if (!awaiting('correction')) return;
    if (!isRunnableTaskList(arg?.tasks, input.settings.planMaxTasks ?? DEFAULT_PLAN_MAX_TASKS)) {
      log.warn('correction ignored: not a task list the plan can run');
      return;
    }
    const { by, at, comment } = recorded(state, 'requestChanges', arg);
    showProposal(state, { tasks: arg.tasks, by, at, ...(comment ? { comment } : {}) });
  });
}

/**
 * The tasks a person approved, after the planning run proposed them; how the plan ended when it was rejected or no
 * one decided in time. A planning run that failed fails the plan.
 */
export async function approvedTasks(
  input: RunInput,
  state: RunState,
  pending: TaskListDecision,
): Promise<PlanTask[] | RunStatus> {
  setStatus(state, 'planning');
  const record: PlanTaskState = {
    id: PLANNING_TASK,
    needs: [],
    state: 'running',
    runId: `${state.id}-${PLANNING_TASK}`,
    startedAt: nowIso(),
  };
  state.planning = record;
  const spec = planningSpec(input.spec);
  const plan = { id: state.id, task: PLANNING_TASK, needs: [], conflicts: [] };
  try {
    const done = await executeChild(specRun, childOptions(record.runId, spec, { ...input, spec, plan }));
    Object.assign(record, { state: 'passed', status: done.status });
    showProposal(state, done.proposal!);
  } catch (err) {
    if (isCancellation(err)) throw err;
    Object.assign(record, { state: 'failed', reason: `failed: ${childFailure(err)}` });
    planFailed(state, 'agent', `the planning ${record.reason}`);
  } finally {
    Object.assign(record, { endedAt: nowIso() });
  }
  setStatus(state, 'awaiting_plan_approval');
  // Whoever is told when a run awaits approval is told the plan's tasks do (its status says which approval). Not
  // awaited: a slow receiver's retries must not hold a decision up; the plan's tasks outlast them.
  void deliverNotice(runNotice({ state }, 'awaiting_approval'));
  const { timeout } = input.spec.approval;
  if (!(await condition(() => pending.decision !== undefined, timeout))) {
    state.failure = { stage: 'approval', reason: `no decision on the proposed tasks within ${humanDuration(timeout)}` };
    return 'timed_out';
  }
  state.decisions.push(pending.decision!);
  if (pending.decision!.kind === 'reject') return 'rejected';
  return state.proposal!.tasks.map((t) => ({ ...t }));
}

/** The list as it stands, and its graph: each task waiting, as it will run once approved. */
function showProposal(state: RunState, proposal: NonNullable<RunState['proposal']>): void {
  state.proposal = proposal;
  state.tasks = proposal.tasks.map((t) => ({
    id: t.id,
    needs: t.needs,
    state: 'waiting',
    runId: `${state.id}-${t.id}`,
  }));
  state.updatedAt = nowIso();
}
