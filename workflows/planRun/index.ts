// A plan (docs/plans.md): its tasks, each a child specRun of its own (`<plan>-<task>`), started as soon as every task
// it needs has passed, on a base that merges what they delivered; a task that fails skips what depends on it, and
// the others go on. Then the integration, one more child: every task merged, the plan's checks, one approval, one
// delivery. The plan's history keeps each task's state only, never a child's.
import {
  CancellationScope,
  condition,
  executeChild,
  log,
  isCancellation,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  FINAL_STATUSES,
  type Checkpoint,
  type Decision,
  type RunInput,
  type RunState,
  type RunStatus,
} from '../../contracts/run';
import type { PlanTaskState } from '../../contracts/plan';
import { dependentsOf, INTEGRATION_TASK, integrationSpec, PLANNING_TASK, taskSpec, tasksOf } from '../../spec/plan';
import type { PlanTask } from '../../spec/schema';
import { redoTaskSignal, stateQuery, taskStatusSignal } from '../messages';
import { requestedChangesFeedback } from '../specRun/feedback';
import { recorded } from '../specRun/handlers';
import { specRun } from '../specRun';
import { queuedState } from '../specRun/context';
import { anyWorker } from '../specRun/proxies';
import { nowIso } from '../specRun/time';
import { childFailure, childOptions, planFailed, setStatus } from './children';
import { approvedTasks, registerTaskListHandlers, type TaskListDecision } from './planning';

export async function planRun(submitted: RunInput): Promise<RunState> {
  const { workflowId } = workflowInfo();
  let input = submitted;
  const state = initialState(input, workflowId);
  setHandler(stateQuery, () => state);
  const taskList: TaskListDecision = {};
  registerTaskListHandlers(input, state, taskList);
  setHandler(taskStatusSignal, ({ task, status }) => {
    const record =
      task === INTEGRATION_TASK
        ? state.integration
        : task === PLANNING_TASK
          ? state.planning
          : state.tasks!.find((t) => t.id === task);
    if (!record) return;
    record.status = status;
    // While the integration runs, its status is the plan's: awaiting_approval is where a person decides for all.
    if (task === INTEGRATION_TASK && ![status, state.status].some((s) => FINAL_STATUSES.includes(s)))
      setStatus(state, status);
  });
  // A person's request for changes naming a task, while the plan awaits approval: taken at once, acted on by the loop.
  const redo: Redo = {};
  setHandler(redoTaskSignal, (arg) => {
    const task = state.tasks!.find((t) => t.id === arg?.task);
    if (state.status !== 'awaiting_approval' || redo.request || !task) {
      log.warn('request ignored: the plan is not awaiting approval, or names no task of it', { task: arg?.task });
      return;
    }
    redo.request = { ...recorded(state, 'requestChanges', arg), task: task.id };
  });
  if (input.spec.tasks === 'auto') {
    const approved = await approvedTasks(input, state, taskList);
    if (!Array.isArray(approved)) {
      setStatus(state, approved);
      return state;
    }
    input = { ...input, spec: { ...input.spec, tasks: approved } };
  }
  const feedback = new Map<string, string>();
  setStatus(state, 'running_tasks');
  for (;;) {
    await runTasks(input, state, feedback);
    const failed = state.tasks!.find((t) => t.state === 'failed');
    if (failed) {
      const skipped = state.tasks!.filter((t) => t.state === 'skipped').map((t) => t.id);
      planFailed(
        state,
        'agent',
        `task "${failed.id}" ${failed.reason}${skipped.length ? `; skipped: ${skipped.join(', ')}` : ''}`,
      );
    }
    const ended = await integrate(input, state, redo);
    if (ended !== 'redo') {
      setStatus(state, ended);
      return state;
    }
    // The named task runs again with the request as its feedback, then what needs it, then a new integration.
    const { task, ...decision } = redo.request!;
    redo.request = undefined;
    state.decisions.push(decision);
    for (const id of [task, ...dependentsOf(tasksOf(input.spec), task)]) {
      const record = state.tasks!.find((t) => t.id === id)!;
      for (const key of ['branch', 'commit', 'proofId', 'status', 'reason', 'startedAt', 'endedAt'] as const)
        delete record[key];
      record.state = 'waiting';
    }
    feedback.set(task, requestedChangesFeedback(decision));
    setStatus(state, 'running_tasks');
  }
}

/** A request for changes naming a task, signalled while the plan awaits approval. */
interface Redo {
  request?: Decision & { task: string };
}

/** Every task, each started as soon as the tasks it needs have passed; a task that failed skips what needs it. */
async function runTasks(input: RunInput, state: RunState, feedback: Map<string, string>): Promise<void> {
  const tasks = tasksOf(input.spec);
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
        runTask(input, state, task, t, byId, feedback.get(t.id)).finally(() => running.delete(t.id)),
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
}

/**
 * The integration: every task merged over the base, judged by the plan's checks and review (an agent only
 * for what they find, or a conflict), approved once, delivered on the plan's branch. Returns how it ended.
 */
async function integrate(input: RunInput, state: RunState, redo: Redo): Promise<RunStatus | 'redo'> {
  const passed = state.tasks!;
  const record: PlanTaskState = {
    id: INTEGRATION_TASK,
    needs: passed.map((t) => t.id),
    state: 'running',
    runId: `${state.id}-${INTEGRATION_TASK}`,
    startedAt: nowIso(),
  };
  state.integration = record;
  try {
    const merged = await anyWorker.mergeTaskBase({
      runId: state.id,
      repo: input.spec.repo,
      base: input.spec.base,
      // Only the tasks nothing needs: each one's branch holds what its needs delivered (and how their conflicts
      // were resolved), so merging the others again would only bring their conflicts back.
      branches: passed.filter((t) => !passed.some((o) => o.needs.includes(t.id))).map((t) => t.branch!),
      target: state.branch,
      as: 'bundle',
      commitsOf: record.runId,
    });
    const start: Checkpoint = {
      commit: merged.commit,
      ...(merged.bundleId ? { bundleId: merged.bundleId } : {}),
      afterStage: 'provision',
      iteration: 0,
    };
    const spec = { ...integrationSpec(input.spec), branch: state.branch };
    const tasks = passed.map((t) => ({
      id: t.id,
      runId: t.runId,
      needs: t.needs,
      proofId: t.proofId!,
      commit: t.commit!,
    }));
    const plan = {
      id: state.id,
      task: INTEGRATION_TASK,
      needs: record.needs,
      conflicts: merged.conflicts,
      start,
      tasks,
    };
    const scope = new CancellationScope();
    const child = scope.run(() => executeChild(specRun, childOptions(record.runId, spec, { ...input, spec, plan })));
    const redone = await Promise.race([
      child.then(
        () => false,
        () => false,
      ),
      condition(() => redo.request !== undefined).then(
        () => true,
        () => false,
      ),
    ]);
    if (redone) {
      // The integration awaited approval: cancelled, it tears its sandbox down; a new one follows the task's rerun.
      scope.cancel();
      await child.catch(() => undefined);
      Object.assign(record, { state: 'failed', reason: `changes requested on task "${redo.request!.task}"` });
      return 'redo';
    }
    const done = await child;
    Object.assign(record, { state: done.status === 'succeeded' ? 'passed' : 'failed', status: done.status });
    Object.assign(state, { finalCommit: done.finalCommit, proofId: done.proofId, pullRequest: done.pullRequest });
    return done.status;
  } catch (err) {
    if (isCancellation(err)) throw err;
    Object.assign(record, { state: 'failed', reason: `failed: ${childFailure(err)}` });
    return planFailed(state, 'agent', `the integration ${record.reason}`);
  } finally {
    record.endedAt = nowIso();
  }
}

function initialState(input: RunInput, workflowId: string): RunState {
  return {
    ...queuedState(input, input.spec.branch ?? `nightshift/${workflowId}`),
    tasks: tasksOf(input.spec).map((t) => ({
      id: t.id,
      needs: t.needs,
      state: 'waiting',
      runId: `${workflowId}-${t.id}`,
    })),
  };
}

/** One task as its own run, on its base; its record says how it ended. */
async function runTask(
  input: RunInput,
  state: RunState,
  task: PlanTask,
  record: PlanTaskState,
  byId: Map<string, PlanTaskState>,
  feedback: string | undefined,
): Promise<void> {
  Object.assign(record, { state: 'running', startedAt: nowIso() });
  // Beside the plan's branch, never under it (git cannot hold both `x` and `x/y`); task ids hold no ".".
  const branches = `${state.branch}.tasks/${task.id}`;
  try {
    const needs = task.needs.map((n) => byId.get(n)!);
    let base = input.spec.base;
    let conflicts: string[] = [];
    if (needs.length) {
      base = `${branches}.base`;
      ({ conflicts } = await anyWorker.mergeTaskBase({
        runId: state.id,
        repo: input.spec.repo,
        base: input.spec.base,
        branches: needs.map((n) => n.branch!),
        target: base,
        as: 'branch',
      }));
    }
    const spec = { ...taskSpec(input.spec, task), base, branch: branches };
    const plan = { id: state.id, task: task.id, needs: task.needs, conflicts, ...(feedback ? { feedback } : {}) };
    const done = await executeChild(specRun, childOptions(record.runId, spec, { ...input, spec, plan }));
    if (done.status === 'succeeded')
      Object.assign(record, { state: 'passed', branch: done.branch, commit: done.finalCommit, proofId: done.proofId });
    else Object.assign(record, { state: 'failed', reason: `ended ${done.status}` });
    record.status = done.status;
  } catch (err) {
    if (isCancellation(err)) throw err;
    Object.assign(record, { state: 'failed', reason: `failed: ${childFailure(err)}` });
  } finally {
    record.endedAt = nowIso();
  }
}
