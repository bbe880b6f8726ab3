import { dependentsOf, planProblems, planWaves, PlanTaskSchema, type PlanTask } from '../../spec/plan';

// A plan's graph (spec/plan.ts): the rules a plan is checked by at submit, and the orders a scheduler reads from it.

const tasks = (...defs: [string, string[]?][]): PlanTask[] =>
  defs.map(([id, needs]) => PlanTaskSchema.parse({ id, task: `do ${id}`, needs: needs ?? [] }));
const DIAMOND = tasks(['a'], ['b', ['a']], ['c', ['a']], ['d', ['b', 'c']]);

test('a diamond is a plan: no problem, three waves, and what depends on each task', () => {
  expect(planProblems(DIAMOND, 50)).toEqual([]);
  expect(planWaves(DIAMOND)).toEqual([['a'], ['b', 'c'], ['d']]);
  expect(dependentsOf(DIAMOND, 'a')).toEqual(['b', 'c', 'd']);
  expect(dependentsOf(DIAMOND, 'c')).toEqual(['d']);
  expect(dependentsOf(DIAMOND, 'd')).toEqual([]);
});

test('each problem names the task and field: a duplicate id, an unknown need, a task needing itself', () => {
  expect(planProblems(tasks(['a'], ['b', ['a']], ['a']), 50)).toEqual([
    { field: 'tasks.2.id', message: '"a" is the id of tasks.0 too' },
  ]);
  expect(planProblems(tasks(['a'], ['b', ['a', 'z']], ['c', ['c']]), 50)).toEqual([
    { field: 'tasks.1.needs.1', message: 'no task "z" in this plan (its tasks: a, b, c)' },
    { field: 'tasks.2.needs.0', message: 'task "c" cannot need itself' },
  ]);
});

test('a cycle is named by the tasks on it, in order, at the field of its first task', () => {
  const cyclic = tasks(['a'], ['b', ['a', 'd']], ['c', ['b']], ['d', ['c']]);
  expect(planProblems(cyclic, 50)).toEqual([
    { field: 'tasks.1.needs', message: 'a cycle: "b" needs "d" needs "c" needs "b"' },
  ]);
  expect(() => planWaves(cyclic)).toThrow(/cycle/);
});

test('more tasks than the server allows is a problem of the whole list', () => {
  const many = tasks(...Array.from({ length: 4 }, (_, i): [string] => [`t${i}`]));
  expect(planProblems(many, 3)).toEqual([
    { field: 'tasks', message: '4 tasks; this server runs at most 3 in a plan (NIGHTSHIFT_PLAN_MAX_TASKS)' },
  ]);
  expect(planProblems(many, 4)).toEqual([]);
});

test("a task's id is a slug (part of a run id and a branch name); its task text is required", () => {
  expect(PlanTaskSchema.safeParse({ id: 'Add API', task: 'x' }).success).toBe(false);
  expect(PlanTaskSchema.safeParse({ id: '../x', task: 'x' }).success).toBe(false);
  expect(PlanTaskSchema.safeParse({ id: 'api-2', task: ' ' }).success).toBe(false);
  expect(PlanTaskSchema.parse({ id: 'api-2', task: 'Add the endpoint' })).toEqual({
    id: 'api-2',
    task: 'Add the endpoint',
    needs: [],
  });
});
