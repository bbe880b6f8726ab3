import type { PlanTask, ProposedTask, Spec } from './schema';

// A plan (issue 24, docs/plans.md): a spec whose `tasks:` cut the work into dependent tasks, each run as a run of its
// own once the tasks it needs have passed. This file is the graph's rules, checked at submit so a bad plan is a 400
// naming the task and field before anything starts, and each task's own spec.

/** The most tasks a plan may have unless the server says otherwise (NIGHTSHIFT_PLAN_MAX_TASKS). */
export const DEFAULT_PLAN_MAX_TASKS = 50;

/** A plan's task id: a slug, part of its run's id (`<plan>-<id>`) and its branch. */
export const TASK_ID = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** The plan's last child, after every task passed (docs/plans.md): its id within the plan, no task's. */
export const INTEGRATION_TASK = 'integration';
/** A `tasks: auto` plan's first child: its agent proposes the tasks (docs/plans.md). */
export const PLANNING_TASK = 'planning';

/** One thing wrong with a plan's graph, by the field a person fixes. */
export interface PlanProblem {
  field: string;
  message: string;
}

/**
 * What is wrong with `tasks` as a graph: an id used twice, a need that names no task or the task itself, more tasks
 * than `max`, a cycle (named by the tasks on it, in order). Empty when the plan can run.
 */
export function planProblems(tasks: Pick<PlanTask, 'id' | 'needs'>[], max: number): PlanProblem[] {
  const problems: PlanProblem[] = [];
  if (tasks.length > max)
    problems.push({
      field: 'tasks',
      message: `${tasks.length} tasks; this server runs at most ${max} in a plan (NIGHTSHIFT_PLAN_MAX_TASKS)`,
    });
  const index = new Map<string, number>();
  tasks.forEach((t, i) => {
    const first = index.get(t.id);
    if (t.id === INTEGRATION_TASK || t.id === PLANNING_TASK)
      problems.push({
        field: `tasks.${i}.id`,
        message: `"${t.id}" is a step of the plan's own; name the task otherwise`,
      });
    if (first === undefined) index.set(t.id, i);
    else problems.push({ field: `tasks.${i}.id`, message: `"${t.id}" is the id of tasks.${first} too` });
  });
  tasks.forEach((t, i) =>
    t.needs.forEach((need, k) => {
      const field = `tasks.${i}.needs.${k}`;
      if (need === t.id) problems.push({ field, message: `task "${t.id}" cannot need itself` });
      else if (!index.has(need))
        problems.push({
          field,
          message: `no task "${need}" in this plan (its tasks: ${[...index.keys()].join(', ')})`,
        });
    }),
  );
  if (problems.length) return problems;
  const cycle = findCycle(tasks);
  if (cycle)
    problems.push({
      field: `tasks.${index.get(cycle[0])}.needs`,
      message: `a cycle: ${[...cycle, cycle[0]].map((id) => `"${id}"`).join(' needs ')}`,
    });
  return problems;
}

/** A cycle of needs, as the ids on it (each needs the next, the last the first); undefined when there is none. */
function findCycle(tasks: Pick<PlanTask, 'id' | 'needs'>[]): string[] | undefined {
  const needs = new Map(tasks.map((t) => [t.id, t.needs]));
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'open') return path.slice(path.indexOf(id));
    state.set(id, 'open');
    path.push(id);
    for (const need of needs.get(id) ?? []) {
      const found = visit(need);
      if (found) return found;
    }
    path.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const t of tasks) {
    const found = visit(t.id);
    if (found) return found;
  }
  return undefined;
}

/**
 * The tasks in waves: each wave's tasks need only tasks of earlier waves, in the plan's order within a wave. A
 * scheduler runs a task as soon as its needs pass, so waves are for reading (the status tree, the docs), not timing.
 */
export function planWaves(tasks: Pick<PlanTask, 'id' | 'needs'>[]): string[][] {
  const waves: string[][] = [];
  const placed = new Set<string>();
  while (placed.size < tasks.length) {
    const wave = tasks.filter((t) => !placed.has(t.id) && t.needs.every((n) => placed.has(n))).map((t) => t.id);
    if (!wave.length) throw new Error('planWaves: the plan has a cycle (planProblems finds it)');
    wave.forEach((id) => placed.add(id));
    waves.push(wave);
  }
  return waves;
}

/** The tasks that depend on `id`, directly or through others: what a failed task skips, and what a change re-runs. */
export function dependentsOf(tasks: PlanTask[], id: string): string[] {
  const found = new Set<string>();
  const grow = (of: string) => {
    for (const t of tasks)
      if (t.needs.includes(of) && !found.has(t.id)) {
        found.add(t.id);
        grow(t.id);
      }
  };
  grow(id);
  return tasks.map((t) => t.id).filter((t) => found.has(t));
}

/** A plan's tasks: none yet while `tasks: auto` waits for its proposal to be approved. */
export function tasksOf(spec: Spec): PlanTask[] {
  return Array.isArray(spec.tasks) ? spec.tasks : [];
}

/**
 * The spec a task runs as: the plan's, with the task's overrides, its goal (the plan's `task`) and its own task in the
 * prompt. What its needs delivered is added when it starts (workflows/planRun/).
 */
export function taskSpec(plan: Spec, task: PlanTask): Spec {
  const { tasks: _tasks, ...defaults } = plan;
  const goal = plan.task.trim();
  return {
    ...defaults,
    title: `${plan.title}: ${task.id}`.slice(0, 200),
    task: goal ? `The goal this task is part of:\n${goal}\n\nThis task (${task.id}):\n${task.task}` : task.task,
    agent: task.agent ?? plan.agent,
    scope: task.scope ?? plan.scope,
    checks: task.checks ?? plan.checks,
    approval: { ...plan.approval, required: task.approval?.required ?? false },
    branch: undefined,
  };
}

/**
 * The integration's spec: the plan's own fields (checks, scope, approval) on the merge of every task, its agent told
 * to make the whole pass, keeping what each task did.
 */
export function integrationSpec(plan: Spec): Spec {
  const { tasks: _tasks, ...defaults } = plan;
  const goal = plan.task.trim();
  const ids = tasksOf(plan)
    .map((t) => t.id)
    .join(', ');
  return {
    ...defaults,
    task: `${goal ? `The goal:\n${goal}\n\n` : ''}This plan's tasks (${ids}) were each done and checked on their own, and are merged in this workspace. Make the whole pass the plan's checks and resolve any conflict between them, keeping what each task did.`,
  };
}

/**
 * The planning run's spec (`tasks: auto`): the plan's agent and sandbox, its goal as the task; no checks judge a
 * proposal, a person does, so it awaits no approval of its own and delivers nothing.
 */
export function planningSpec(plan: Spec): Spec {
  const { tasks: _tasks, ...defaults } = plan;
  return {
    ...defaults,
    title: `${plan.title}: planning`.slice(0, 200),
    checks: [],
    approval: { ...plan.approval, required: false },
    branch: undefined,
  };
}

/**
 * Whether `value` is a task list a plan can run, as ProposedTasksSchema and planProblems judge one (the API checks a
 * correction with both; a signal sent to Temporal directly is held to this in the workflow, which cannot use zod).
 */
export function isRunnableTaskList(value: unknown, max: number): value is ProposedTask[] {
  const fields = ['id', 'task', 'needs'];
  const wellFormed =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every(
      (t: Partial<Record<string, unknown>>) =>
        typeof t === 'object' &&
        t !== null &&
        Object.keys(t).every((k) => fields.includes(k)) &&
        typeof t.id === 'string' &&
        TASK_ID.test(t.id) &&
        typeof t.task === 'string' &&
        t.task.trim() !== '' &&
        Array.isArray(t.needs) &&
        t.needs.every((n) => typeof n === 'string'),
    );
  return wellFormed && planProblems(value as ProposedTask[], max).length === 0;
}
