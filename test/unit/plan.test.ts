import * as path from 'node:path';
import { prepareRun, SpecRejected } from '../../admission/prepareRun';
import { loadConfig } from '../../config';
import { RemoteRepos } from '../../config/remotes';
import { formatRun } from '../../cli/format';
import { buildPlanningPrompt, parseTaskList } from '../../agents/planning';
import { dependentsOf, isRunnableTaskList, planProblems, planWaves, taskSpec, tasksOf } from '../../spec/plan';
import { PlanTaskSchema, type PlanTask } from '../../spec/schema';
import type { RunStatus } from '../../contracts/run';
import { makeRepo, tempDir } from '../helpers/repos';

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

describe('admission: a bad plan is refused naming the task and field, before anything starts', () => {
  const repo = makeRepo({ 'README.md': 'x\n' });
  const config = loadConfig({
    NIGHTSHIFT_HOME: tempDir('plan-home'),
    NIGHTSHIFT_REPOS_DIR: path.dirname(repo),
    NIGHTSHIFT_PLAN_MAX_TASKS: '4',
  });
  const plan = (planTasks: object[], extra: object = {}) =>
    JSON.stringify({
      title: 'Billing in cents',
      task: 'Store every amount in cents.',
      repo,
      agent: { kind: 'command', command: ['true'] },
      tasks: planTasks,
      ...extra,
    });
  const refusal = (planTasks: object[]) => {
    try {
      prepareRun(plan(planTasks), 'application/json', 'admin', config);
    } catch (err) {
      if (err instanceof SpecRejected) return err.message;
      throw err;
    }
    return 'admitted';
  };

  test('`tasks: auto` is admitted, its tasks none yet; any other word is refused naming the field', () => {
    const input = prepareRun(plan('auto' as never), 'application/json', 'admin', config);
    expect([input.spec.tasks, tasksOf(input.spec), input.settings.planMaxTasks]).toEqual(['auto', [], 4]);
    expect(refusal('some' as never)).toBe(
      'invalid spec: tasks at line 1: "auto" (the agent proposes the tasks) or a list of tasks',
    );
  });

  test('a diamond is admitted; each task runs with the goal, its own task and its overrides', () => {
    const input = prepareRun(
      plan([
        { id: 'a', task: 'the schema' },
        { id: 'b', task: 'the API', needs: ['a'], checks: [{ name: 'api', run: 'make api' }] },
        { id: 'c', task: 'the worker', needs: ['a'] },
        { id: 'd', task: 'the docs', needs: ['b', 'c'], approval: { required: true } },
      ]),
      'application/json',
      'admin',
      config,
    );
    const [, b, , d] = tasksOf(input.spec);
    expect(taskSpec(input.spec, b)).toMatchObject({
      title: 'Billing in cents: b',
      task: 'The goal this task is part of:\nStore every amount in cents.\n\nThis task (b):\nthe API',
      checks: [{ name: 'api', run: 'make api' }],
      approval: { required: false },
      repo: input.spec.repo,
    });
    expect(taskSpec(input.spec, b).tasks).toBeUndefined();
    expect(taskSpec(input.spec, d).approval.required).toBe(true);
  });

  test('a plan on a registered remote is refused: its tasks merge in a local repository only, so far', () => {
    new RemoteRepos(config.home).add({ name: 'billing', url: 'https://git.example.com/acme/billing.git' });
    expect(() =>
      prepareRun(plan([{ id: 'a', task: 'x' }], { repo: 'billing' }), 'application/json', 'admin', config),
    ).toThrow('tasks: plans run on local repositories only so far; billing is a registered remote (docs/plans.md)');
  });

  test.each([
    [
      [
        { id: 'a', task: 'x' },
        { id: 'a', task: 'y' },
      ],
      'invalid spec: tasks.1.id: "a" is the id of tasks.0 too',
    ],
    [[{ id: 'a', task: 'x', needs: ['z'] }], 'invalid spec: tasks.0.needs.0: no task "z" in this plan (its tasks: a)'],
    [
      [
        { id: 'a', task: 'x', needs: ['c'] },
        { id: 'b', task: 'y', needs: ['a'] },
        { id: 'c', task: 'z', needs: ['b'] },
      ],
      'invalid spec: tasks.0.needs: a cycle: "a" needs "c" needs "b" needs "a"',
    ],
    [
      ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, task: id })),
      'invalid spec: tasks: 5 tasks; this server runs at most 4 in a plan (NIGHTSHIFT_PLAN_MAX_TASKS)',
    ],
    [
      [{ id: 'A b', task: 'x' }],
      'invalid spec: tasks.0.id at line 1: a slug: lowercase letters, digits and "-", at most 40',
    ],
    [
      [{ id: 'a', task: 'x', checks: [{ name: 'h', run: 'true', holdout: 'nope' }] }],
      'invalid spec: tasks.0.checks.0.holdout: task "a": ',
    ],
  ])('%j → %s', (planTasks, message) => {
    expect(refusal(planTasks)).toContain(message);
  });
});

const at = (s: number) => new Date(Date.UTC(2026, 11, 6, 12, 0, s)).toISOString();

/** A plan's state as `nightshift status` gets it, before its tasks. */
const planState = (id: string, status: RunStatus) => ({
  id,
  title: 'Billing in cents',
  repo: '/srv/billing',
  branch: `nightshift/${id}`,
  status,
  iteration: 0,
  maxIterations: 3,
  stages: [],
  checks: [],
  scopeViolations: [],
  decisions: [],
  reprovisions: 0,
  submittedBy: 'alice',
  createdAt: at(0),
  updatedAt: at(40),
});

test('nightshift status shows a plan as a tree: each task by depth, its state, time, run, needs and reason', () => {
  const text = formatRun({
    ...planState('ns-p', 'failed'),
    tasks: [
      { id: 'a', needs: [], state: 'passed', runId: 'ns-p-a', startedAt: at(0), endedAt: at(12) },
      { id: 'b', needs: ['a'], state: 'passed', runId: 'ns-p-b', startedAt: at(12), endedAt: at(20) },
      {
        id: 'c',
        needs: ['a'],
        state: 'failed',
        runId: 'ns-p-c',
        startedAt: at(12),
        endedAt: at(21),
        reason: 'checks: x',
      },
      { id: 'd', needs: ['b', 'c'], state: 'skipped', runId: 'ns-p-d', reason: 'it needs "c", which failed' },
    ],
  });
  expect(text).toContain(
    [
      'tasks',
      '  a      passed      12s  ns-p-a',
      '    b    passed       8s  ns-p-b  (needs a)',
      '    c    failed       9s  ns-p-c  (needs a): checks: x',
      '      d  skipped          ns-p-d  (needs b, c): it needs "c", which failed',
    ].join('\n'),
  );
});

test("the plan's integration is the tree's last node, under every task, with its run's status while it runs", () => {
  const text = formatRun({
    ...planState('ns-q', 'awaiting_approval'),
    tasks: [
      { id: 'a', needs: [], state: 'passed', runId: 'ns-q-a', startedAt: at(0), endedAt: at(12) },
      { id: 'b', needs: [], state: 'passed', runId: 'ns-q-b', startedAt: at(0), endedAt: at(10) },
    ],
    integration: {
      id: 'integration',
      needs: ['a', 'b'],
      state: 'running',
      status: 'awaiting_approval',
      runId: 'ns-q-integration',
      startedAt: at(12),
    },
  });
  const tree = text.split('\n').slice(4, 7);
  expect(tree.map((l) => l.replace(/running +\S+/, 'running <time>'))).toEqual([
    '  a              passed      12s  ns-q-a',
    '  b              passed      10s  ns-q-b',
    '    integration  running <time>  ns-q-integration [awaiting_approval]  (needs a, b)',
  ]);
});

test('a task may not be called "integration" or "planning": those are steps of the plan\'s own', () => {
  expect(
    planProblems(
      [
        { id: 'integration', needs: [] },
        { id: 'planning', needs: [] },
      ],
      50,
    ),
  ).toEqual([
    { field: 'tasks.0.id', message: `"integration" is a step of the plan's own; name the task otherwise` },
    { field: 'tasks.1.id', message: `"planning" is a step of the plan's own; name the task otherwise` },
  ]);
});

describe("tasks: auto: what the planning agent writes is held to a submitted plan's rules", () => {
  const good = {
    tasks: [
      { id: 'schema', task: 'the schema' },
      { id: 'api', task: 'the API', needs: ['schema'] },
    ],
  };

  test('a good list, with needs defaulting to none', () => {
    expect(parseTaskList(JSON.stringify(good), 50)).toEqual({
      tasks: [
        { id: 'schema', task: 'the schema', needs: [] },
        { id: 'api', task: 'the API', needs: ['schema'] },
      ],
    });
  });

  test('no file, no JSON (not quoted back: the text may be what a link reached), a graph problem, too many', () => {
    expect(parseTaskList(undefined, 50)).toEqual({ problems: ['no .nightshift/tasks.json was written'] });
    expect(parseTaskList('SECRET=hunter2', 50)).toEqual({ problems: ['.nightshift/tasks.json is not valid JSON'] });
    const cycle = {
      tasks: [
        { id: 'a', task: 'x', needs: ['b'] },
        { id: 'b', task: 'y', needs: ['a'] },
      ],
    };
    expect(parseTaskList(JSON.stringify(cycle), 50)).toEqual({
      problems: ['tasks.0.needs: a cycle: "a" needs "b" needs "a"'],
    });
    expect(parseTaskList(JSON.stringify(good), 1)).toEqual({
      problems: ['tasks: 2 tasks; this server runs at most 1 in a plan (NIGHTSHIFT_PLAN_MAX_TASKS)'],
    });
  });

  // A pattern would look for `checks: []`; the principle is that a planner sets the cut of the work and nothing that
  // judges it. Every key a submitted task may override is refused, whatever its value, and so is any other.
  test.each(['checks', 'scope', 'agent', 'approval', 'harness'])('a task setting "%s" is refused', (key) => {
    const list = { tasks: [{ id: 'a', task: 'x', [key]: { required: false } }] };
    expect(parseTaskList(JSON.stringify(list), 50)).toEqual({ problems: [`tasks.0: Unrecognized key: "${key}"`] });
    expect(isRunnableTaskList(list.tasks, 50)).toBe(false);
  });

  test("the workflow's own check of a correction agrees: slugs, texts, needs, the graph", () => {
    expect(isRunnableTaskList((parseTaskList(JSON.stringify(good), 50) as { tasks: object[] }).tasks, 50)).toBe(true);
    expect(isRunnableTaskList([], 50)).toBe(false);
    expect(isRunnableTaskList([{ id: '../x', task: 'x', needs: [] }], 50)).toBe(false);
    expect(isRunnableTaskList([{ id: 'a', task: ' ', needs: [] }], 50)).toBe(false);
    expect(isRunnableTaskList([{ id: 'a', task: 'x', needs: ['a'] }], 50)).toBe(false);
    expect(isRunnableTaskList([{ id: 'a', task: 'x', needs: 'b' }], 50)).toBe(false);
    expect(isRunnableTaskList('auto', 50)).toBe(false);
  });

  test("the prompt names the file, its shape, the limit, and a refused list's problems", () => {
    const prompt = buildPlanningPrompt({
      title: 'Cents',
      goal: 'Store cents.',
      maxTasks: 7,
      feedback: '- tasks.0: bad',
    });
    expect(prompt).toContain('Store cents.');
    expect(prompt).toContain('Write `.nightshift/tasks.json`');
    expect(prompt).toContain('At most 7 tasks');
    expect(prompt).toMatch(/## Your previous list was refused\n\n- tasks\.0: bad/);
  });
});
