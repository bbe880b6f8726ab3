import { ApplicationFailure, Context } from '@temporalio/activity';
import { Client, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import type { SharedQueueActivities, WorkspaceQueueActivities } from '../../activities';
import { scopeViolations } from '../../judge/scope';
import { parseSpec } from '../../spec/parse';
import { TemporalConnection } from '../../temporal/connection';
import type { campaignRun, planRun, specRun } from '../../workflows';
import type { CampaignInput, CampaignState } from '../../contracts/campaign';
import {
  approveSignal,
  batchDecisionSignal,
  budgetLimitsChangedSignal,
  campaignMergedSignal,
  campaignRunSignal,
  campaignStateQuery,
  cancelCampaignSignal,
  editTasksSignal,
  pauseCampaignSignal,
  raiseBudgetSignal,
  resumeCampaignSignal,
  retryCampaignSignal,
  redoTaskSignal,
  rejectSignal,
  requestChangesSignal,
  stateQuery,
} from '../../workflows/messages';
import { fleetRegistry, fleetWorkflowId, workerReportSignal } from '../../workflows/fleet';
import { claimQueue } from '../../contracts/taskQueues';
import {
  FINAL_STATUSES,
  type CheckResult,
  type RunSettings,
  type RunState,
  type RunStatus,
  type WorkerReport,
} from '../../contracts/run';

// The real specRun workflow (the suite's bundle of workflows/) on a real Temporal dev server, its activities stubs
// that answer as each test says: the pipeline's decisions — the fix loop, approval, budgets, moving a run off a lost
// worker, the rebase — and the feedback the agent gets, in seconds, with no sandbox, git or model. Each run has
// its own stubs, so the tests run at once.

// What the tests wait for is the workflow's decisions, not its speed: beside the suite's Go builds on two cores, a
// four-task plan took over 60 s to reach its approval and the 50-task one over 120 s to end. Waits poll gently (each
// query is work for the same busy server) and give up after WAIT_MS; a test, after TEST_TIMEOUT_MS.
const WAIT_MS = 200_000;
const TOGETHER_MS = WAIT_MS / 2;
const TEST_TIMEOUT_MS = 300_000;
jest.setTimeout(TEST_TIMEOUT_MS);

/** Every activity the workflow may call, whichever task queue serves it: the stubs serve them all on every queue. */
type Activities = SharedQueueActivities & WorkspaceQueueActivities;
type Input<K extends keyof Activities> = Parameters<Activities[K]>[0];
type Output<K extends keyof Activities> = Awaited<ReturnType<Activities[K]>>;
type Stubs = { [K in keyof Activities]?: (input: Input<K>) => Promise<Output<K>> };

interface Call {
  activity: keyof Activities;
  /** The task queue the activity was polled from: which worker ran it. */
  queue: string;
  input: any;
}

const BASE = 'b'.repeat(40);
const commitOf = (iteration: number) => `${iteration}`.repeat(40);
/** The signed commit in place of `commit` (the signing stub's answer). */
const signedOf = (commit: string) => `f${commit.slice(1)}`;

/** The spec every test starts from (run through the real parser, so every default is filled in). */
function specWith(extra: Record<string, unknown> = {}) {
  return parseSpec(
    JSON.stringify({
      title: 'Set the value to two',
      task: 'Make src/value.txt contain 2.',
      repo: '/srv/repos/value',
      agent: { kind: 'command', command: ['./fix.sh'] },
      scope: { allow: ['src/**'] },
      checks: [{ name: 'value', run: './check.sh' }],
      limits: { iterations: 2 },
      approval: { timeout: '10m' },
      ...extra,
    }),
    'application/json',
  );
}

function check(name: string, command: string, over: Partial<CheckResult> = {}): CheckResult {
  return {
    name,
    command,
    passed: true,
    exitCode: 0,
    timedOut: false,
    durationMs: 3,
    logId: `log-${name}`,
    logTail: `${name}: all good`,
    ...over,
  };
}

const failing = (logTail: string) => ({ passed: false, exitCode: 1, logTail });

/** Every spec check passes. */
const allPass = async (input: Input<'runChecks'>) => input.checks.map((c) => check(c.name, c.run));

/** An agent iteration that exits 0 having changed src/value.txt, committed as checkpoint `commitOf(iteration)`. */
function agentDid(input: Input<'runAgent'>, over: Partial<Output<'runAgent'>['result']> = {}): Output<'runAgent'> {
  const n = input.iteration;
  return {
    result: {
      command: './fix.sh',
      exitCode: 0,
      timedOut: false,
      durationMs: 5,
      logId: `agent-log-${n}`,
      logTail: `iteration ${n} done`,
      changedFiles: ['src/value.txt'],
      ...over,
    },
    diffId: `diff-${n}`,
    checkpoint: { commit: commitOf(n), bundleId: `bundle-${n}`, afterStage: 'agent', iteration: n },
  };
}

const workerShutdown = () =>
  ApplicationFailure.create({ type: 'WorkerShutdown', message: 'the worker was stopped mid-stage' });

interface RunOptions {
  spec?: Record<string, unknown>;
  stubs?: Stubs;
  /**
   * The workers claimWorkspace hands out, in order (the last one again once they run out): WORKERS, or one nobody
   * polls.
   */
  claims?: string[];
  settings?: Partial<RunSettings>;
  submittedBy?: string;
}

interface TestRun {
  handle: WorkflowHandle<typeof specRun>;
  calls: Call[];
  /** The inputs one activity was called with, in order. */
  inputs<K extends keyof Activities>(activity: K): Input<K>[];
  /** The workers (names) one activity ran on, in order. */
  ranOn(activity: keyof Activities): string[];
  /** The run's state once it reaches `status`, queried while it runs. */
  reach(status: RunStatus): Promise<RunState>;
  /** The run's final state: the workflow's result, or the state a failed run carries in its failure. */
  end(): Promise<RunState>;
}

/** A run's (or a plan's) state once it reaches `status`, queried while it runs. */
async function reach(handle: WorkflowHandle, status: RunStatus): Promise<RunState> {
  for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
    const state = await handle.query(stateQuery);
    if (state.status === status) return state;
    if (FINAL_STATUSES.includes(state.status))
      throw new Error(`the run ended ${state.status}, not ${status}: ${JSON.stringify(state.failure)}`);
  }
  throw new Error(`the run did not reach ${status} within ${WAIT_MS / 1000} s`);
}

/** Workers every test's runs share; which stubs answer is looked up by the calling run. */
const WORKERS = ['w1', 'w2'];
const taskQueue = `workflow-test-${randomBytes(4).toString('hex')}`;
const queueOf = (worker: string) => `${taskQueue}/worker/${worker}`;
const runs = new Map<string, { stubs: Stubs; calls: Call[] }>();

/** Stubs for a run on which every stage passes and the base never moves; its workspace on `claims`, in order. */
function passingStubs(claims: string[]): Stubs {
  let claimed = 0;
  return {
    findDriver: async () => WORKERS,
    claimWorkspace: async () => {
      // The last one again once they run out.
      const worker = claims[Math.min(claimed++, claims.length - 1)];
      return { worker, queue: queueOf(worker) };
    },
    provisionWorkspace: async (input) => ({ base: input.base ?? 'main', baseCommit: input.baseCommit ?? BASE }),
    runAgent: async (input) => agentDid(input),
    checkScope: async (input) => ({ violations: scopeViolations(input.changedFiles, input.scope) }),
    runChecks: allPass,
    reviewChanges: async () => ({ verdict: 'approve', findings: [], diffLines: 2 }),
    teardownWorkspace: async () => undefined,
    rebaseOntoBase: async () => ({ moved: false }),
    signCommits: async (input) => ({
      ...input.checkpoint,
      commit: signedOf(input.checkpoint.commit),
      bundleId: 'bundle-signed',
      afterStage: 'proof',
    }),
    writeProof: async () => 'proof-id',
    writeCampaignProof: async (input) => `campaign-proof-${input.campaign.status}`,
    deliverBranch: async (input) => ({ commit: input.checkpoint.commit, summary: `kept on branch ${input.branch}` }),
    notifyWebhooks: async () => ({ delivered: 0 }),
    logFailedNotification: async () => undefined,
    mergeTaskBase: async () => ({ commit: 'a'.repeat(40), conflicts: [] }),
    proposeTasks: async () => {
      throw ApplicationFailure.nonRetryable('no planning in this test');
    },
    repoOverrides: async () => ({ fields: {} }),
    selectRepos: async () => {
      throw ApplicationFailure.nonRetryable('no selector in this test');
    },
  };
}

let client: Client;
let connection: NativeConnection;
let workers: Worker[] = [];
let workersDone: Promise<unknown>;

/** Every activity, answered by the stubs of the run that called it, and recorded with the queue it was polled from. */
const dispatch = Object.fromEntries(
  (Object.keys(passingStubs([])) as (keyof Activities)[]).map((activity) => [
    activity,
    async (input: unknown) => {
      const { workflowExecution, taskQueue: queue } = Context.current().info;
      const run = runs.get(workflowExecution?.workflowId ?? '');
      if (!run) throw ApplicationFailure.nonRetryable(`no stubs for run ${workflowExecution?.workflowId}`);
      run.calls.push({ activity, queue, input });
      return (run.stubs[activity] as (i: unknown) => Promise<unknown>)(input);
    },
  ]),
);

beforeAll(async () => {
  const address = process.env.NIGHTSHIFT_TEST_TEMPORAL;
  if (!address) throw new Error('no Temporal server: run the tests through jest (globalSetup starts one)');
  // The SDK's lines (workers starting and stopping, the runs that fail on purpose) would bury jest's report.
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  client = new Client({ connection: await TemporalConnection.open({ address }) });
  connection = await NativeConnection.connect({ address });
  // The queues a run uses: the shared one (the workflow, and activities any worker runs), the bwrap claim queue, and
  // each worker's own.
  const worker = (queue: string, bundle?: string) =>
    Worker.create({
      connection,
      taskQueue: queue,
      activities: dispatch,
      ...(bundle ? { workflowBundle: { codePath: bundle } } : {}),
    });
  workers = await Promise.all([
    worker(taskQueue, process.env.NIGHTSHIFT_WORKFLOW_BUNDLE!),
    worker(claimQueue(taskQueue, 'bwrap')),
    ...WORKERS.map((w) => worker(queueOf(w))),
  ]);
  workersDone = Promise.all(workers.map((w) => w.run()));
});

afterAll(async () => {
  for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  await workersDone;
  await connection?.close();
  await client?.connection.close();
});

/** Start a run of `spec` whose activities the stubs answer (defaults: every stage passes, nothing moves). */
async function startRun(opts: RunOptions = {}): Promise<TestRun> {
  const calls: Call[] = [];
  const stubs: Stubs = { ...passingStubs(opts.claims ?? ['w1']), ...opts.stubs };
  const workflowId = `ns-${randomBytes(6).toString('hex')}`;
  runs.set(workflowId, { stubs, calls });
  // Long enough that no stub, nor a worker's poll on a busy machine, looks lost unless a test means it to.
  const settings: RunSettings = {
    heartbeatTimeoutMs: 60_000,
    workerQueueTimeoutMs: 60_000,
    maxReprovisions: 2,
    ...opts.settings,
  };
  const handle = await client.workflow.start<typeof specRun>('specRun', {
    taskQueue,
    workflowId,
    args: [
      { spec: specWith(opts.spec), specDigest: 'd'.repeat(64), submittedBy: opts.submittedBy ?? 'unit', settings },
    ],
  });

  return {
    handle,
    calls,
    inputs: <K extends keyof Activities>(activity: K) =>
      calls.filter((c) => c.activity === activity).map((c) => c.input as Input<K>),
    ranOn: (activity) => calls.filter((c) => c.activity === activity).map((c) => c.queue.slice(queueOf('').length)),
    reach: (status) => reach(handle, status),
    async end() {
      try {
        return await handle.result();
      } catch (err) {
        if (err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure)
          return err.cause.details?.[0] as RunState;
        throw err;
      }
    },
  };
}

/** The run's stages as `name iteration status`, in order. */
const stagesOf = (state: RunState) => state.stages.map((s) => `${s.stage} ${s.iteration} ${s.status}`);

test.concurrent(
  'the fix loop: a check failing in iteration 1 goes back to the agent with its name and log; passing in 2, the run awaits approval, then is delivered',
  async () => {
    const run = await startRun({
      stubs: {
        runChecks: async (input) =>
          input.iteration === 1 ? [check('value', './check.sh', failing('expected 2, got 1'))] : allPass(input),
      },
    });
    const waiting = await run.reach('awaiting_approval');
    expect(waiting.iteration).toBe(2);
    expect(waiting.feedback).toBe(
      'The pipeline found problems in iteration 1. Fix them:\n\n- Check "value" (`./check.sh`) failed with exit code 1. Its log ends with:\nexpected 2, got 1',
    );
    expect(stagesOf(waiting)).toEqual([
      'provision 0 passed',
      'agent 1 passed',
      'scope 1 passed',
      'checks 1 failed',
      'agent 2 passed',
      'scope 2 passed',
      'checks 2 passed',
      'review 2 passed',
      'approval 2 running',
    ]);
    // Iteration 2 starts from iteration 1's work, told what failed.
    expect(run.inputs('runAgent').map((a) => [a.iteration, a.feedback, a.checkpoint?.commit])).toEqual([
      [1, undefined, undefined],
      [2, waiting.feedback, commitOf(1)],
    ]);
    // Nobody needs the workspace while a human decides: it is gone before the approval stage.
    expect(run.inputs('teardownWorkspace')).toHaveLength(1);
    expect(waiting.workspace).toBeUndefined();

    await run.handle.signal(approveSignal, { comment: 'ship it', by: 'alice' });
    const state = await run.end();
    expect(state).toMatchObject({
      status: 'succeeded',
      iteration: 2,
      finalCommit: signedOf(commitOf(2)),
      proofId: 'proof-id',
      decisions: [{ kind: 'approve', by: 'alice', comment: 'ship it', iteration: 2 }],
    });
    expect(stagesOf(state).slice(-4)).toEqual([
      'approval 2 passed',
      'rebase 2 passed',
      'proof 2 passed',
      'deliver 2 passed',
    ]);
    // The approved commit is signed first: the proof and the delivery name the signed one.
    expect(run.inputs('signCommits').map((s) => [s.checkpoint.commit, s.baseCommit])).toEqual([[commitOf(2), BASE]]);
    expect(run.inputs('writeProof').map((p) => p.state.finalCommit)).toEqual([signedOf(commitOf(2))]);
    expect(run.inputs('deliverBranch').map((d) => d.checkpoint)).toEqual([
      { commit: signedOf(commitOf(2)), bundleId: 'bundle-signed', afterStage: 'proof', iteration: 2 },
    ]);
    expect(state.stages.find((s) => s.stage === 'proof')!.summary).toBe(
      `signed ${signedOf(commitOf(2)).slice(0, 12)} and proof.tar.gz proof-id`,
    );
  },
);

test.concurrent(
  'the fix loop: every problem of an iteration reaches the agent at once: its exit, files out of scope, checks (a hold-out one without its log), then the review',
  async () => {
    const run = await startRun({
      spec: {
        checks: [
          { name: 'value', run: './check.sh' },
          { name: 'hidden', run: './hidden.sh', holdout: 'value-set' },
        ],
        limits: { iterations: 3 },
        approval: { required: false },
      },
      stubs: {
        runAgent: async (input) =>
          input.iteration === 1
            ? agentDid(input, {
                exitCode: 137,
                limitHit: 'out of memory (limit 512 MiB)',
                logTail: 'Killed',
                changedFiles: ['src/value.txt', 'README.md'],
              })
            : agentDid(input),
        runChecks: async (input) =>
          input.iteration > 1
            ? allPass(input)
            : [
                check('value', './check.sh', {
                  passed: false,
                  exitCode: null,
                  timedOut: true,
                  logTail: 'still waiting',
                }),
                check('hidden', './hidden.sh', {
                  ...failing('assert value == 2 (hidden test source)'),
                  holdout: { set: 'value-set', tests: { passed: 3, failed: 2 } },
                }),
              ],
        reviewChanges: async (input) =>
          input.diffId === 'diff-2'
            ? {
                verdict: 'changes',
                findings: [
                  {
                    rule: 'tests-weakened',
                    message: 'test/value.test.js loses 2 assertions',
                    file: 'test/value.test.js',
                  },
                ],
                diffLines: 8,
              }
            : { verdict: 'approve', findings: [], diffLines: 2 },
      },
    });
    const state = await run.end();
    expect(state).toMatchObject({ status: 'succeeded', iteration: 3 });
    const [first, second] = run
      .inputs('runAgent')
      .slice(1)
      .map((a) => a.feedback!);
    expect(first.split('\n\n- ')).toEqual([
      'The pipeline found problems in iteration 1. Fix them:',
      expect.stringMatching(
        /^The agent was stopped by a sandbox limit: out of memory \(limit 512 MiB\)\. Its log ends with:\nKilled$/,
      ),
      'These files may not be changed (scope allow ["src/**"], deny []); revert them: README.md',
      'Check "value" (`./check.sh`) failed with a timeout. Its log ends with:\nstill waiting',
      'Hold-out check "hidden" (`./hidden.sh`) failed with exit code 1; 2 of its 5 tests failed. Its tests are hidden from you: make the change right for every input, not only for the tests you can see.',
    ]);
    // A hold-out check's log would show its tests.
    expect(first).not.toContain('hidden test source');
    expect(second).toBe(
      'The pipeline found problems in iteration 2. Fix them:\n\n- Review (tests-weakened): test/value.test.js loses 2 assertions',
    );
    // The review runs only on an iteration without other problems.
    expect(run.inputs('reviewChanges').map((r) => r.diffId)).toEqual(['diff-2', 'diff-3']);
  },
);

test.concurrent(
  'the fix loop: a check still failing when the iterations run out fails the run with that check as the reason',
  async () => {
    const run = await startRun({
      stubs: { runChecks: async () => [check('value', './check.sh', failing('expected 2, got 3'))] },
    });
    const state = await run.end();
    expect(state).toMatchObject({
      status: 'failed',
      iteration: 2,
      failure: {
        stage: 'checks',
        reason: 'Check "value" (`./check.sh`) failed with exit code 1. Its log ends with:\nexpected 2, got 3',
      },
    });
    expect(run.inputs('runAgent')).toHaveLength(2);
    expect(run.inputs('deliverBranch')).toHaveLength(0);
    // The sandbox is torn down whatever the outcome.
    expect(run.inputs('teardownWorkspace')).toHaveLength(1);
  },
);

test.concurrent('approval: no decision within approval.timeout: timed_out, nothing delivered', async () => {
  const run = await startRun({ spec: { approval: { timeout: '2s' } } });
  const state = await run.end();
  expect(state).toMatchObject({
    status: 'timed_out',
    iteration: 1,
    decisions: [],
    failure: { stage: 'approval', reason: 'no decision within 2s' },
  });
  expect(state.stages.at(-1)).toMatchObject({ stage: 'approval', status: 'failed', summary: 'no decision within 2s' });
  expect(state.stages.at(-1)!.durationMs).toBeGreaterThanOrEqual(2000);
  expect(run.inputs('writeProof')).toHaveLength(0);
  expect(run.inputs('deliverBranch')).toHaveLength(0);
  expect(run.inputs('notifyWebhooks').map((n) => n.event)).toEqual(['awaiting_approval']);
});

test.concurrent(
  'budget: spent mid-iteration, the run waits in awaiting_budget with no sandbox held; a raise makes it go on from the checkpoint, the agent told why; `onExceed: fail` fails as before',
  async () => {
    const SPENT = 'nightshift: cost budget of $1 exhausted (used $1.02)';
    // The first iteration is cut short by the gateway; the next does the work.
    const stopsOnce = {
      runAgent: async (input: Input<'runAgent'>) =>
        input.iteration === 1 ? { ...agentDid(input), budgetExhausted: SPENT } : agentDid(input),
    };
    const run = await startRun({ spec: { limits: { costUsd: 1 } }, stubs: stopsOnce });
    const waiting = await run.reach('awaiting_budget');
    expect(waiting).toMatchObject({ iteration: 1, budget: { stoppedBy: SPENT, limits: { costUsd: 1 } } });
    // Checkpointed, no check judged the unfinished work, the workspace freed.
    expect(waiting.checkpoint).toMatchObject({ iteration: 1 });
    expect(run.inputs('runChecks')).toHaveLength(0);
    expect(run.inputs('teardownWorkspace')).toHaveLength(1);
    // A raise of nothing, or a decision meant for approval, changes nothing.
    await run.handle.signal(raiseBudgetSignal, { by: 'mallory', costUsd: -5 });
    await run.handle.signal(approveSignal, { by: 'mallory' });
    await run.handle.signal(raiseBudgetSignal, { by: 'carol', comment: 'worth it', costUsd: 2 });
    const approval = await run.reach('awaiting_approval');
    expect(approval).toMatchObject({ iteration: 2, budget: { stoppedBy: SPENT, limits: { costUsd: 3 } } });
    expect(approval.decisions).toMatchObject([
      { kind: 'raiseBudget', by: 'carol', comment: 'worth it', raise: { costUsd: 2 }, iteration: 1 },
    ]);
    const [first, second] = run.inputs('runAgent');
    expect(second.limits.costUsd).toBe(3);
    // From where it stopped: the second provision starts from the first iteration's checkpoint.
    expect(run.inputs('provisionWorkspace')[1].checkpoint).toEqual(waiting.checkpoint);
    expect(second.feedback).toBe(
      [
        `Your last iteration was stopped by the run's model budget, not by a problem in your work: ${SPENT}.`,
        'carol raised the budget (+$2): worth it.',
        'What you had done so far is in the workspace (your branch, as checkpointed when you were stopped): go on from there.',
      ].join('\n'),
    );
    expect(first.feedback).toBeUndefined();
    await run.handle.signal(approveSignal, { by: 'carol' });
    expect((await run.end()).status).toBe('succeeded');
    // The webhooks heard of the wait as of an approval's.
    expect(run.inputs('notifyWebhooks').map((n) => n.event)).toEqual([
      'awaiting_budget',
      'awaiting_approval',
      'succeeded',
    ]);

    const failing = await startRun({ spec: { limits: { costUsd: 1, onExceed: 'fail' } }, stubs: stopsOnce });
    expect(await failing.end()).toMatchObject({ status: 'failed', failure: { stage: 'agent', reason: SPENT } });
  },
);

test.concurrent(
  "budget: a limit above the run waits for its window to roll over (not the approval timeout) or an admin's change, and goes on by itself",
  async () => {
    const SPENT = "nightshift: token alice's budget of $1 a day (used $1.02) is spent until …";
    const stopsUntil = (until: () => number) => ({
      runAgent: async (input: Input<'runAgent'>) =>
        input.iteration === 1 ? { ...agentDid(input), budgetExhausted: SPENT, budgetUntil: until() } : agentDid(input),
    });
    let until = 0;
    const rolls = await startRun({
      spec: { approval: { timeout: '1s' } },
      stubs: stopsUntil(() => (until = Date.now() + 4000)),
    });
    const waiting = await rolls.reach('awaiting_budget');
    expect(waiting.budget).toEqual({ stoppedBy: SPENT, limits: {}, until: new Date(until).toISOString() });
    const approval = await rolls.reach('awaiting_approval');
    expect(approval).toMatchObject({ iteration: 2, decisions: [] });
    expect(Date.parse(approval.stages.find((st) => st.stage === 'budget')!.endedAt!)).toBeGreaterThanOrEqual(until);
    const [first, second] = rolls.inputs('runAgent');
    expect(first.spender).toEqual({ token: 'unit', repo: '/srv/repos/value' });
    expect(second.feedback).toBe(
      [
        `Your last iteration was stopped by a model budget, not by a problem in your work: ${SPENT}.`,
        'That limit has rolled over.',
        'What you had done so far is in the workspace (your branch, as checkpointed when you were stopped): go on from there.',
      ].join('\n'),
    );

    // A scheduled run spends its creator's budget: a schedule is no way around a token's limit.
    const changed = await startRun({
      stubs: stopsUntil(() => Date.now() + 3_600_000),
      submittedBy: 'alice (schedule nightly)',
    });
    await changed.reach('awaiting_budget');
    expect(changed.inputs('runAgent')[0].spender!.token).toBe('alice');
    await changed.handle.signal(budgetLimitsChangedSignal);
    await changed.reach('awaiting_approval');
    expect(changed.inputs('runAgent')[1].feedback).toContain('That limit has changed by an admin.');
  },
);

test.concurrent('budget: no raise within approval.timeout: timed_out; a reject ends the wait too', async () => {
  const spent = { runAgent: async (input: Input<'runAgent'>) => ({ ...agentDid(input), budgetExhausted: 'spent' }) };
  const idle = await startRun({ spec: { limits: { tokens: 10 }, approval: { timeout: '2s' } }, stubs: spent });
  expect(await idle.end()).toMatchObject({
    status: 'timed_out',
    failure: { stage: 'budget', reason: 'budget spent (spent); no decision within 2s' },
  });
  const rejected = await startRun({ spec: { limits: { tokens: 10 } }, stubs: spent });
  await rejected.reach('awaiting_budget');
  await rejected.handle.signal(rejectSignal, { by: 'carol', comment: 'too dear' });
  const state = await rejected.end();
  expect(state).toMatchObject({ status: 'rejected', decisions: [{ kind: 'reject', by: 'carol' }] });
  expect(rejected.inputs('deliverBranch')).toHaveLength(0);
});

test.concurrent(
  'approval: requested changes give a fresh iteration budget and reach the agent with the comment',
  async () => {
    // A budget of 2: iteration 1 passes, the reviewer asks for more, 2 fails its check, 3 passes: beyond the spec's 2.
    const run = await startRun({
      stubs: {
        runChecks: async (input) =>
          input.iteration === 2 ? [check('value', './check.sh', failing('expected TWO'))] : allPass(input),
      },
    });
    await run.reach('awaiting_approval');
    await run.handle.signal(requestChangesSignal, { comment: 'Name the constant TWO.', by: 'bob' });
    const waiting = await run.reach('awaiting_approval');
    expect(waiting).toMatchObject({
      iteration: 3,
      maxIterations: 3,
      decisions: [{ kind: 'requestChanges', by: 'bob', comment: 'Name the constant TWO.', iteration: 1 }],
    });
    expect(run.inputs('runAgent').map((a) => a.feedback)).toEqual([
      undefined,
      'A reviewer requested changes (bob):\n\nName the constant TWO.',
      expect.stringContaining('The pipeline found problems in iteration 2. Fix them:\n\n- Check "value"'),
    ]);

    await run.handle.signal(rejectSignal, { comment: 'not this way', by: 'bob' });
    const state = await run.end();
    expect(state.status).toBe('rejected');
    expect(state.decisions.map((d) => d.kind)).toEqual(['requestChanges', 'reject']);
    expect(run.inputs('deliverBranch')).toHaveLength(0);
  },
);

test.concurrent(
  'a lost worker: stopped mid-stage (WorkerShutdown): the run is re-provisioned on another worker from its last checkpoint, and the stage runs again there',
  async () => {
    const run = await startRun({
      spec: { approval: { required: false } },
      claims: ['w1', 'w2'],
      stubs: {
        runChecks: async (input) =>
          Context.current().info.taskQueue.endsWith('/w1') ? Promise.reject(workerShutdown()) : allPass(input),
      },
    });
    const state = await run.end();
    expect(state).toMatchObject({ status: 'succeeded', iteration: 1, reprovisions: 1 });
    expect(run.ranOn('provisionWorkspace')).toEqual(['w1', 'w2']);
    expect(run.inputs('provisionWorkspace').map((p) => [p.checkpoint?.commit, p.baseCommit])).toEqual([
      [undefined, undefined],
      [commitOf(1), BASE],
    ]);
    expect(run.ranOn('runChecks')).toEqual(['w1', 'w2']);
    // The agent's work was kept: no second agent run, one checks stage.
    expect(run.inputs('runAgent')).toHaveLength(1);
    expect(stagesOf(state).filter((s) => s.startsWith('checks'))).toEqual(['checks 1 passed']);
    // w1 was alive after all: told to drop the run's workspace (and slot) once the run was on w2; w2 tore down its own.
    expect([...run.ranOn('teardownWorkspace')].sort()).toEqual(['w1', 'w2']);
  },
);

test.concurrent(
  'a lost worker: nobody polls its queue: the stage waits workerQueueTimeout, then the run moves to another worker',
  async () => {
    const run = await startRun({
      spec: { approval: { required: false } },
      claims: ['gone', 'w2'],
      settings: { workerQueueTimeoutMs: 3000 },
    });
    const state = await run.end();
    expect(state).toMatchObject({ status: 'succeeded', reprovisions: 1 });
    expect(run.ranOn('provisionWorkspace')).toEqual(['w2']);
    expect(state.stages[0]).toMatchObject({
      stage: 'provision',
      status: 'passed',
      summary: `workspace on w2, base ${BASE.slice(0, 12)}`,
    });
    expect(state.stages[0].durationMs).toBeGreaterThanOrEqual(3000);
  },
);

test.concurrent('a lost worker: more lost workers than maxReprovisions: the run fails, saying so', async () => {
  const run = await startRun({
    claims: ['w1', 'w2'],
    settings: { maxReprovisions: 1 },
    stubs: { runAgent: () => Promise.reject(workerShutdown()) },
  });
  const state = await run.end();
  expect(state).toMatchObject({
    status: 'failed',
    reprovisions: 1,
    failure: { stage: 'agent', reason: 'lost 2 workers while running "agent, iteration 1"; giving up' },
  });
  expect(run.ranOn('runAgent')).toEqual(['w1', 'w2']);
});

/** A worker's report to the fleet registry (workflows/fleet.ts) as of `at`; the registry starts with the first. */
function report(worker: string, at: number): Promise<unknown> {
  const r: WorkerReport = {
    ...{ name: worker, host: 'test', capacity: 1, load: 0, waiting: 0, drivers: ['bwrap'], agents: [] },
    ...{ memoryBytes: 1, startedAt: new Date(at).toISOString(), at: new Date(at).toISOString() },
  };
  return client.workflow.signalWithStart(fleetRegistry, {
    workflowId: fleetWorkflowId(taskQueue),
    taskQueue,
    args: [[]],
    signal: workerReportSignal,
    signalArgs: [r],
  });
}

/** The signals a run received, by name. */
async function signalsTo(run: TestRun): Promise<string[]> {
  const history = await run.handle.fetchHistory();
  return history.events!.flatMap((e) => e.workflowExecutionSignaledEventAttributes?.signalName ?? []);
}

test.concurrent(
  'a lost worker the fleet registry reports gone: its provision is given up at once, not after workerQueueTimeout',
  async () => {
    const now = Date.now();
    await report('dead-a', now);
    // Nobody polls dead-a's queue: without the registry the provision would wait the whole minute.
    const run = await startRun({ spec: { approval: { required: false } }, claims: ['dead-a', 'w2'] });
    await new Promise((r) => setTimeout(r, 1000));
    // Another worker's report 20 s newer than dead-a's last: dead-a has missed three.
    await report('alive-a', now + 20_000);
    const state = await run.end();
    expect(state).toMatchObject({ status: 'succeeded', reprovisions: 1 });
    expect(run.ranOn('provisionWorkspace')).toEqual(['w2']);
    expect(state.stages[0].durationMs).toBeLessThan(20_000);
    expect(await signalsTo(run)).toContain('workerLost');
  },
);

test.concurrent('a worker reported gone before the run watched it: the run is told at once and moves on', async () => {
  const now = Date.now();
  await report('dead-b', now);
  await report('alive-b', now + 20_000);
  const run = await startRun({ spec: { approval: { required: false } }, claims: ['dead-b', 'w2'] });
  const state = await run.end();
  expect(state).toMatchObject({ status: 'succeeded', reprovisions: 1 });
  expect(state.stages[0].durationMs).toBeLessThan(20_000);
  expect(await signalsTo(run)).toContain('workerLost');
});

test.concurrent(
  'a worker that stops after the review: the teardown bound for its queue is given up once the registry says so',
  async () => {
    // A worker of this test's own, stopped (no poller) as soon as it has answered the review.
    const worker = await Worker.create({
      connection,
      taskQueue: queueOf('dying-c'),
      activities: dispatch,
      shutdownGraceTime: '10s',
    });
    const running = worker.run();
    // Ahead of the other tests' reports (which run at once): only this test's last report makes dying-c stale.
    const ahead = Date.now() + 40_000;
    await report('dying-c', ahead);
    const run = await startRun({
      spec: { approval: { required: false } },
      claims: ['dying-c'],
      stubs: {
        // The worker stops polling before it answers: the teardown that follows finds nobody on its queue.
        reviewChanges: async () => {
          worker.shutdown();
          return { verdict: 'approve', findings: [], diffLines: 2 };
        },
      },
    });
    await running;
    const stoppedAt = Date.now();
    await report('alive-c', ahead + 20_000);
    const state = await run.end();
    expect(state).toMatchObject({ status: 'succeeded', reprovisions: 0 });
    // Delivered within seconds of the worker's stop, with no teardown run anywhere: a dead worker's files are the
    // sweeper's.
    expect(Date.now() - stoppedAt).toBeLessThan(20_000);
    expect(run.ranOn('teardownWorkspace')).toEqual([]);
    expect(await signalsTo(run)).toContain('workerLost');
  },
);

/**
 * A plan's tasks as run ids → their stubs: each task's agent takes `agentMs` and records when it ran, `fails` fails
 * every check, and the agents of `together` also wait until all of them have started (up to TOGETHER_MS): on a busy
 * machine two runs started at once can begin further apart than any fixed agent time, while a plan running them one
 * after the other still shows no overlap.
 */
function planStubs(
  planId: string,
  ids: string[],
  options: { fails?: string[]; agentMs?: number; together?: string[] } = {},
) {
  const { fails = [], agentMs = 1500, together = [] } = options;
  const ran = new Map<string, [number, number]>();
  const started = new Set<string>();
  for (const id of [...ids, 'integration']) {
    const stubs: Stubs = {
      ...passingStubs(['w1']),
      runAgent: async (input) => {
        const start = Date.now();
        started.add(id);
        await new Promise((r) => setTimeout(r, agentMs));
        const deadline = start + TOGETHER_MS;
        while (together.includes(id) && !together.every((t) => started.has(t)) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          // Alive while it waits: the wait, not the run's heartbeat timeout, is what may end it.
          Context.current().heartbeat();
        }
        ran.set(id, [start, Date.now()]);
        return agentDid(input);
      },
      ...(fails.includes(id)
        ? { runChecks: async (input) => input.checks.map((c) => check(c.name, c.run, failing('no'))) }
        : {}),
    };
    runs.set(`${planId}-${id}`, { stubs, calls: [] });
  }
  const merges: Input<'mergeTaskBase'>[] = [];
  const notices: Input<'notifyWebhooks'>[] = [];
  runs.set(planId, {
    stubs: {
      notifyWebhooks: async (notice) => {
        notices.push(notice);
        return { delivered: 1 };
      },
      mergeTaskBase: async (input) => {
        merges.push(input);
        // Tasks' bases with two needs conflict; the integration's start does not.
        if (input.as === 'bundle') return { commit: 'b'.repeat(40), conflicts: [], bundleId: 'merged-bundle' };
        return { commit: 'a'.repeat(40), conflicts: input.branches.length > 1 ? ['src/value.txt'] : [] };
      },
    },
    calls: [],
  });
  return { ran, merges, notices };
}

async function startPlan(planId: string, tasks: object[] | 'auto', spec: Record<string, unknown> = {}) {
  return client.workflow.start<typeof planRun>('planRun', {
    taskQueue,
    workflowId: planId,
    args: [
      {
        spec: specWith({ tasks, limits: { iterations: 1 }, ...spec }),
        specDigest: 'd'.repeat(64),
        submittedBy: 'unit',
        settings: { heartbeatTimeoutMs: 60_000, workerQueueTimeoutMs: 60_000, maxReprovisions: 2 },
      },
    ],
  });
}

const DIAMOND = [
  { id: 'a', task: 'the schema' },
  { id: 'b', task: 'the API', needs: ['a'] },
  { id: 'c', task: 'the worker', needs: ['a'] },
  { id: 'd', task: 'the docs', needs: ['b', 'c'] },
];

test.concurrent(
  'a plan: b and c at once after a, d after both on a base merging them, its conflict its feedback; one approval',
  async () => {
    const planId = `plan-${randomBytes(4).toString('hex')}`;
    const { ran, merges } = planStubs(planId, ['a', 'b', 'c', 'd'], { together: ['b', 'c'] });
    const handle = await startPlan(planId, DIAMOND);
    // The tasks need no approval; the integration is where the plan waits for one, and says so as its own status.
    const waiting = await reach(handle, 'awaiting_approval');
    expect(waiting.tasks!.map((t) => [t.id, t.state, t.status, t.runId])).toEqual(
      ['a', 'b', 'c', 'd'].map((id) => [id, 'passed', 'succeeded', `${planId}-${id}`]),
    );
    expect(waiting.integration).toMatchObject({
      runId: `${planId}-integration`,
      state: 'running',
      status: 'awaiting_approval',
      needs: ['a', 'b', 'c', 'd'],
    });
    await client.workflow.getHandle(`${planId}-integration`).signal(approveSignal, { comment: 'all of it', by: 'me' });
    const state = await handle.result();
    expect(state.status).toBe('succeeded');
    expect(state.integration).toMatchObject({ state: 'passed', status: 'succeeded' });

    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => ran.get(id)!);
    expect(b[0]).toBeGreaterThanOrEqual(a[1]);
    expect(c[0]).toBeGreaterThanOrEqual(a[1]);
    // b and c overlap in time; d starts after both ended.
    expect(Math.max(b[0], c[0])).toBeLessThan(Math.min(b[1], c[1]));
    expect(d[0]).toBeGreaterThanOrEqual(Math.max(b[1], c[1]));
    // b's and c's merges run at once: in either order. Task branches lie beside the plan's branch, not under it.
    const branch = (id: string) => `nightshift/${planId}.tasks/${id}`;
    expect(merges.map((m) => [m.as, m.target, m.branches]).sort()).toEqual([
      ['branch', `${branch('b')}.base`, [branch('a')]],
      ['branch', `${branch('c')}.base`, [branch('a')]],
      ['branch', `${branch('d')}.base`, [branch('b'), branch('c')]],
      // The integration's start merges the tasks nothing needs: d's branch holds a's, b's and c's work.
      ['bundle', `nightshift/${planId}`, [branch('d')]],
    ]);
    // Each task is a run of its own, on its base, linked to its plan; d's first prompt names the conflict.
    const dRun = runs.get(`${planId}-d`)!;
    const provisioned = dRun.calls.find((x) => x.activity === 'provisionWorkspace')!.input;
    expect(provisioned.base).toBe(`${branch('d')}.base`);
    const dState = await client.workflow.getHandle(`${planId}-d`).result();
    expect(dState.plan).toEqual({ id: planId, task: 'd' });
    expect(dRun.calls.find((x) => x.activity === 'runAgent')!.input.feedback).toMatch(
      /^This task's base merges what the tasks it builds on delivered \(b, c\), and their changes conflict in: src\/value\.txt\./,
    );
    // The integration starts at the merge of all four (d's branch), on the plan's base, and delivers the plan's
    // branch; its first iteration runs no agent (the merge was clean): the checks judge the merge as it is.
    const integration = runs.get(`${planId}-integration`)!;
    expect(integration.calls.find((x) => x.activity === 'provisionWorkspace')!.input).toMatchObject({
      branch: `nightshift/${planId}`,
      checkpoint: { commit: 'b'.repeat(40), bundleId: 'merged-bundle' },
    });
    const agentInputs = integration.calls.filter((x) => x.activity === 'runAgent').map((x) => x.input);
    expect(agentInputs.map((i) => [i.iteration, i.skipAgent])).toEqual([
      [1, 'the integration judges the merged tasks as they are first'],
    ]);
    expect(integration.calls.filter((x) => x.activity === 'runChecks')).toHaveLength(1);
  },
);

test.concurrent(
  'a plan: a task that fails skips what depends on it; the independent task succeeds; the plan fails naming it',
  async () => {
    const planId = `plan-${randomBytes(4).toString('hex')}`;
    const { ran } = planStubs(planId, ['a', 'b', 'c', 'd', 'e'], { fails: ['b'] });
    const handle = await startPlan(planId, [...DIAMOND, { id: 'e', task: 'the changelog' }]);
    const err = await handle.result().then(
      () => undefined,
      (e) => e,
    );
    expect(err?.cause?.message).toBe(
      'task "b" failed: checks: Check "value" (`./check.sh`) failed with exit code 1. Its log ends with:\nno; skipped: d',
    );
    const state = err.cause.details[0] as RunState;
    expect(state.tasks!.map((t) => [t.id, t.state])).toEqual([
      ['a', 'passed'],
      ['b', 'failed'],
      ['c', 'passed'],
      ['d', 'skipped'],
      ['e', 'passed'],
    ]);
    expect(state.tasks!.find((t) => t.id === 'd')!.reason).toBe('it needs "b", which failed');
    expect(ran.has('d')).toBe(false);
  },
);

test.concurrent(
  'a plan: changes requested on task b run b again with the request, then d (which needs it), then a new integration',
  async () => {
    const planId = `plan-${randomBytes(4).toString('hex')}`;
    planStubs(planId, ['a', 'b', 'c', 'd'], { agentMs: 0 });
    const handle = await startPlan(planId, DIAMOND);
    await reach(handle, 'awaiting_approval');
    await handle.signal(redoTaskSignal, { comment: 'amounts in cents', by: 'carol', task: 'b' });
    // The integration waiting for approval is cancelled; b runs again, then d; a and c stand.
    await reach(handle, 'running_tasks');
    const again = await reach(handle, 'awaiting_approval');
    const agentRuns = (id: string) =>
      runs
        .get(`${planId}-${id}`)!
        .calls.filter((x) => x.activity === 'runAgent')
        .map((x) => x.input as Input<'runAgent'>);
    expect(['a', 'b', 'c', 'd'].map((id) => [id, agentRuns(id).length])).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 1],
      ['d', 2],
    ]);
    expect(agentRuns('b')[1].feedback).toBe('A reviewer requested changes (carol):\n\namounts in cents');
    // d runs again on its new base, told only of its needs' conflict, as the first time.
    expect(agentRuns('d')[1].feedback).toMatch(/^This task's base merges/);
    expect(again.decisions).toMatchObject([{ kind: 'requestChanges', comment: 'amounts in cents', by: 'carol' }]);
    expect(again.tasks!.map((t) => t.state)).toEqual(['passed', 'passed', 'passed', 'passed']);
    // A request naming no task of the plan changes nothing.
    await handle.signal(redoTaskSignal, { comment: 'x', by: 'carol', task: 'nope' });
    await client.workflow.getHandle(`${planId}-integration`).signal(approveSignal, { comment: 'now', by: 'carol' });
    const state = await handle.result();
    expect(state.status).toBe('succeeded');
    expect(agentRuns('b')).toHaveLength(2);
  },
);

/** A planning run's proposal as the activity returns it: `tasks` when the list passed, else its `problems`. */
function proposed(input: Input<'proposeTasks'>, list: Partial<Output<'proposeTasks'>>): Output<'proposeTasks'> {
  const result = { command: 'plan', exitCode: 0, timedOut: false, durationMs: 5, logId: 'l', logTail: '' };
  return { result: { ...result, changedFiles: [], logTail: `attempt ${input.iteration}` }, ...list };
}

test.concurrent(
  "tasks: auto: a refused list is the planner's feedback; a person corrects the list, approves it, and it runs",
  async () => {
    const planId = `plan-${randomBytes(4).toString('hex')}`;
    const { notices } = planStubs(planId, ['x', 'y'], { agentMs: 0 });
    const planning = {
      ...passingStubs(['w1']),
      proposeTasks: async (input: Input<'proposeTasks'>) =>
        input.iteration === 1
          ? proposed(input, { problems: ['tasks.0.needs.0: no task "nope" in this plan (its tasks: x)'] })
          : proposed(input, { tasks: [{ id: 'x', task: 'the schema', needs: [] }] }),
    };
    runs.set(`${planId}-planning`, { stubs: planning, calls: [] });
    const handle = await startPlan(planId, 'auto', { limits: { iterations: 2 } });
    const proposal = await reach(handle, 'awaiting_plan_approval');
    expect(proposal.planning).toMatchObject({ runId: `${planId}-planning`, state: 'passed', status: 'succeeded' });
    expect(proposal.proposal).toMatchObject({ by: 'agent', tasks: [{ id: 'x', task: 'the schema', needs: [] }] });
    expect(proposal.tasks!.map((t) => [t.id, t.state])).toEqual([['x', 'waiting']]);
    const attempts = runs.get(`${planId}-planning`)!.calls.filter((c) => c.activity === 'proposeTasks');
    expect(attempts.map((c) => [c.input.iteration, c.input.feedback])).toEqual([
      [1, undefined],
      [2, '- tasks.0.needs.0: no task "nope" in this plan (its tasks: x)'],
    ]);
    expect(attempts[0].input).toMatchObject({ goal: 'Make src/value.txt contain 2.', maxTasks: 50 });
    // The webhooks heard that the plan awaits a decision on its tasks (beside it: it may take a moment).
    for (let i = 0; i < 100 && !notices.length; i++) await new Promise((r) => setTimeout(r, 100));
    expect(notices).toMatchObject([{ event: 'awaiting_approval', runId: planId, status: 'awaiting_plan_approval' }]);
    // Nothing ran yet: no task's run was started.
    expect(runs.get(`${planId}-x`)!.calls).toEqual([]);
    // A correction that is no runnable list (a cycle, a field the planner may not set) changes nothing; a good one
    // replaces the list; an approval of the integration's kind sent before means nothing to the plan.
    await handle.signal(editTasksSignal, { by: 'eve', tasks: [{ id: 'x', task: 't', needs: ['x'] }] });
    await handle.signal(editTasksSignal, {
      by: 'eve',
      tasks: [{ id: 'x', task: 't', needs: [], checks: [] } as never],
    });
    await handle.signal(editTasksSignal, {
      by: 'carol',
      comment: 'y too',
      tasks: [
        { id: 'x', task: 'the schema', needs: [] },
        { id: 'y', task: 'the API', needs: ['x'] },
      ],
    });
    const corrected = await handle.query(stateQuery);
    expect(corrected.proposal).toMatchObject({ by: 'carol', comment: 'y too' });
    expect(corrected.tasks!.map((t) => [t.id, t.needs])).toEqual([
      ['x', []],
      ['y', ['x']],
    ]);
    await handle.signal(approveSignal, { comment: 'go', by: 'carol' });
    const waiting = await reach(handle, 'awaiting_approval');
    expect(waiting.tasks!.map((t) => [t.id, t.state])).toEqual([
      ['x', 'passed'],
      ['y', 'passed'],
    ]);
    expect(waiting.decisions).toMatchObject([{ kind: 'approve', by: 'carol', comment: 'go' }]);
    await client.workflow.getHandle(`${planId}-integration`).signal(approveSignal, { comment: 'ok', by: 'carol' });
    expect((await handle.result()).status).toBe('succeeded');
  },
);

test.concurrent(
  'tasks: auto: a rejected proposal, and one no one decides on in time, end the plan with no task run',
  async () => {
    const ids = [`plan-${randomBytes(4).toString('hex')}`, `plan-${randomBytes(4).toString('hex')}`];
    for (const planId of ids) {
      planStubs(planId, ['x'], { agentMs: 0 });
      const stubs = {
        ...passingStubs(['w1']),
        proposeTasks: async (input: Input<'proposeTasks'>) =>
          proposed(input, { tasks: [{ id: 'x', task: 'the schema', needs: [] }] }),
      };
      runs.set(`${planId}-planning`, { stubs, calls: [] });
    }
    const [rejected, late] = await Promise.all([
      startPlan(ids[0], 'auto'),
      startPlan(ids[1], 'auto', { approval: { timeout: '2s' } }),
    ]);
    await reach(rejected, 'awaiting_plan_approval');
    await rejected.signal(rejectSignal, { comment: 'not like this', by: 'carol' });
    expect(await rejected.result()).toMatchObject({
      status: 'rejected',
      decisions: [{ kind: 'reject', by: 'carol', comment: 'not like this' }],
    });
    expect(await late.result()).toMatchObject({
      status: 'timed_out',
      failure: { stage: 'approval', reason: 'no decision on the proposed tasks within 2s' },
    });
    for (const planId of ids) expect(runs.get(`${planId}-x`)!.calls).toEqual([]);
  },
);

test.concurrent(
  "a plan of 50 tasks: its history keeps a few events per task (children's states stay in their own)",
  async () => {
    const planId = `plan-${randomBytes(4).toString('hex')}`;
    const ids = Array.from({ length: 50 }, (_, i) => `t${i}`);
    planStubs(planId, ids, { agentMs: 0 });
    const handle = await client.workflow.start<typeof planRun>('planRun', {
      taskQueue,
      workflowId: planId,
      args: [
        {
          spec: specWith({
            tasks: ids.map((id, i) => ({ id, task: `task ${id}`, needs: i % 5 ? [`t${i - 1}`] : [] })),
            approval: { required: false },
          }),
          specDigest: 'd'.repeat(64),
          submittedBy: 'unit',
          settings: { heartbeatTimeoutMs: 60_000, workerQueueTimeoutMs: 60_000, maxReprovisions: 2 },
        },
      ],
    });
    const state = await handle.result();
    expect(state.status).toBe('succeeded');
    expect(state.tasks!.every((t) => t.state === 'passed')).toBe(true);
    const events = (await handle.fetchHistory()).events!.length;
    process.stderr.write(`[plan history] 50 tasks and the integration: ${events} events\n`);
    // Per task: its child's start and end, a base merge for 40 of them, a status signal per stage, and the workflow
    // tasks they wake: about 25 (1250 measured), linear in the tasks, nothing of a child's own.
    expect(events).toBeLessThan(51 * 35);
  },
);

const MOVED = 'e'.repeat(40);
const rebased = (conflicts: string[]): Output<'rebaseOntoBase'> => ({
  moved: true,
  baseCommit: MOVED,
  checkpoint: {
    commit: 'c'.repeat(40),
    bundleId: 'bundle-rebased',
    afterStage: 'rebase',
    iteration: 1,
    ...(conflicts.length ? { conflicts } : {}),
  },
  diffId: 'diff-rebased',
  changedFiles: ['src/value.txt'],
  conflicts,
});

test.concurrent(
  'the rebase onto a base that moved: conflicts: another iteration, on the new base, with the conflicting files and how to resolve them',
  async () => {
    let rebases = 0;
    const run = await startRun({
      spec: { approval: { required: false } },
      stubs: { rebaseOntoBase: async () => (rebases++ === 0 ? rebased(['src/value.txt']) : { moved: false }) },
    });
    const state = await run.end();
    expect(state).toMatchObject({
      status: 'succeeded',
      iteration: 2,
      maxIterations: 3,
      baseCommit: MOVED,
      finalCommit: signedOf(commitOf(2)),
    });
    // The commits signed are those on the new base.
    expect(run.inputs('signCommits').map((s) => s.baseCommit)).toEqual([MOVED]);
    expect(stagesOf(state)).toContain('rebase 1 failed');
    expect(state.stages.find((s) => s.stage === 'rebase')!.summary).toBe(
      `main moved to ${MOVED.slice(0, 12)}; conflicts in src/value.txt`,
    );
    const second = run.inputs('runAgent')[1];
    expect(second.feedback).toBe(
      `The base branch main moved from ${BASE.slice(0, 12)} to ${MOVED} while this run was under way (other work landed on it). Your changes conflict with it in: src/value.txt. ` +
        "The workspace now holds your changes on the new base, with git's conflict markers (<<<<<<< … ======= … >>>>>>>) in those files: resolve them so that both the base's changes and yours are kept, and remove the markers.",
    );
    expect(second).toMatchObject({
      iteration: 2,
      baseCommit: MOVED,
      checkpoint: { commit: 'c'.repeat(40), conflicts: ['src/value.txt'] },
    });
    // The old workspace is on the old base: a new one is provisioned from the rebased checkpoint.
    expect(run.inputs('provisionWorkspace').map((p) => [p.checkpoint?.commit, p.baseCommit])).toEqual([
      [undefined, undefined],
      ['c'.repeat(40), MOVED],
    ]);
  },
);

test.concurrent(
  'the rebase onto a base that moved: clean, but a check fails on the new base: another iteration told so',
  async () => {
    let rebases = 0;
    const run = await startRun({
      spec: { approval: { required: false } },
      stubs: {
        rebaseOntoBase: async () => (rebases++ === 0 ? rebased([]) : { moved: false }),
        runChecks: async (input) =>
          input.checkpoint.commit === 'c'.repeat(40)
            ? [check('value', './check.sh', failing('expected 2, got 22'))]
            : allPass(input),
      },
    });
    const state = await run.end();
    expect(state).toMatchObject({ status: 'succeeded', iteration: 2, baseCommit: MOVED });
    expect(run.inputs('runAgent')[1].feedback).toBe(
      `The base branch main moved from ${BASE.slice(0, 12)} to ${MOVED} while this run was under way (other work landed on it). Your changes were rebased onto it without conflicts, but on the new base:\n\n` +
        '- Check "value" (`./check.sh`) failed with exit code 1. Its log ends with:\nexpected 2, got 22',
    );
  },
);

/**
 * A campaign over `names` (repos /srv/repos/<name>), its runs' stubs as `stubsOf` says, started through Temporal;
 * `own` stands in for its own activities (looked up by its id: each repo's `.nightshift.yml`, none by default; its
 * proof).
 */
async function startCampaign(
  names: string[],
  opts: Partial<CampaignInput>,
  stubsOf: (name: string) => Stubs,
  own: Partial<Stubs> = {},
) {
  const id = `camp-${randomBytes(4).toString('hex')}`;
  runs.set(id, { stubs: { ...passingStubs([]), ...own }, calls: [] });
  const spec = specWith({ approval: { required: opts.approvalMode === 'batch', timeout: '10m' } });
  const repos = names.map((name) => ({
    name,
    repo: `/srv/repos/${name}`,
    runId: `${id}-${name}`,
    deliver: spec.deliver,
  }));
  for (const r of repos) runs.set(r.runId, { stubs: { ...passingStubs(['w1', 'w2']), ...stubsOf(r.name) }, calls: [] });
  const settings = { heartbeatTimeoutMs: 60_000, workerQueueTimeoutMs: 60_000, maxReprovisions: 2 };
  const handle = await client.workflow.start<typeof campaignRun>('campaignRun', {
    taskQueue,
    workflowId: id,
    args: [
      {
        run: { spec, specDigest: 'd'.repeat(64), submittedBy: 'unit', settings },
        repos,
        concurrency: 2,
        approvalMode: 'each',
        ...opts,
      },
    ],
  });
  return { id, handle, repos };
}

/** The campaign's state once `ok` holds, queried while it runs (its six runs took 80-90 s under the whole suite). */
async function campaignWhen(handle: WorkflowHandle, ok: (s: CampaignState) => boolean): Promise<CampaignState> {
  for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
    const state = await handle.query(campaignStateQuery);
    if (ok(state)) return state;
  }
  throw new Error(`the campaign did not get there: ${JSON.stringify((await handle.query(campaignStateQuery)).counts)}`);
}

test.concurrent(
  'a campaign: never more than `concurrency` runs at once; two failing repos leave it partial, the others go on; retried once fixed, it succeeds',
  async () => {
    // Each agent waits (up to 10 s) for another to be running too, so two at once is what happens whenever the
    // campaign allows it, however loaded the machine; the most ever at once is counted.
    const agents = { now: 0, most: 0 };
    const broken = new Set(['r2', 'r4']);
    const { id, handle } = await startCampaign(['r1', 'r2', 'r3', 'r4', 'r5', 'r6'], { concurrency: 2 }, (name) => ({
      runAgent: async (input) => {
        agents.now++;
        agents.most = Math.max(agents.most, agents.now);
        for (let i = 0; i < 100 && agents.now < 2; i++) await new Promise((r) => setTimeout(r, 100));
        await new Promise((r) => setTimeout(r, 200));
        agents.now--;
        return agentDid(input);
      },
      runChecks: async (input) =>
        input.checks.map((c) => (broken.has(name) ? check(c.name, c.run, failing('no')) : check(c.name, c.run))),
    }));
    const partial = await campaignWhen(handle, (s) => s.status === 'partial');
    expect(partial.counts).toMatchObject({ succeeded: 4, failed: 2, running: 0, queued: 0 });
    expect(partial.repos.filter((r) => r.state === 'failed').map((r) => [r.repo, r.reason])).toEqual([
      ['r2', expect.stringMatching(/^checks: Check "value"/)],
      ['r4', expect.stringMatching(/^checks: Check "value"/)],
    ]);
    expect(partial.repos.find((r) => r.repo === 'r1')).toMatchObject({
      runId: `${id}-r1`,
      state: 'succeeded',
      attempts: 1,
      commit: signedOf(commitOf(1)),
      proofId: 'proof-id',
    });
    // Two at once, never more.
    expect(agents.most).toBe(2);
    broken.clear();
    await handle.signal(retryCampaignSignal, { by: 'carol', comment: 'fixture fixed' });
    const done = await handle.result();
    expect(done.status).toBe('succeeded');
    expect(done.repos.map((r) => [r.repo, r.attempts])).toEqual([
      ['r1', 1],
      ['r2', 2],
      ['r3', 1],
      ['r4', 2],
      ['r5', 1],
      ['r6', 1],
    ]);
    expect(done.decisions).toMatchObject([{ kind: 'retry', by: 'carol' }]);
    expect(done.history.at(-1)!.counts).toMatchObject({ succeeded: 6 });
    // Signed at each end: partial, then succeeded once retried; the state keeps the last one's digest.
    const signed = runs
      .get(id)!
      .calls.filter((c) => c.activity === 'writeCampaignProof')
      .map((c) => c.input);
    expect(signed.map((s) => s.campaign.status)).toEqual(['partial', 'succeeded']);
    expect(signed[0].campaign.repos.filter((r: { state: string }) => r.state === 'failed')).toHaveLength(2);
    expect(signed[1]).toMatchObject({
      specDigest: 'd'.repeat(64),
      campaign: { id, decisions: [{ kind: 'retry', by: 'carol' }] },
    });
    expect(signed[1].campaign.repos[0]).toMatchObject({ runId: `${id}-r1`, commit: signedOf(commitOf(1)) });
    expect(signed[1].campaign).not.toHaveProperty('history');
    expect(done.proofId).toBe('campaign-proof-succeeded');
  },
);

test.concurrent(
  "a repo's own .nightshift.yml sets its run's checks, setup and scope over the campaign's; a bad one fails that repo alone, named",
  async () => {
    const own = specWith({ checks: [{ name: 'own', run: './own-check.sh' }], scope: { allow: ['src/**', 'lib/**'] } });
    const { handle } = await startCampaign(['plain', 'own', 'bad'], { concurrency: 3 }, () => ({}), {
      repoOverrides: async (input: Input<'repoOverrides'>) =>
        input.repo.endsWith('/own')
          ? { fields: { checks: own.checks, scope: own.scope } }
          : input.repo.endsWith('/bad')
            ? { problem: '.nightshift.yml: checks.0.run: Required' }
            : { fields: {} },
    });
    const done = await campaignWhen(handle, (s) => s.status === 'partial');
    expect(done.repos.map((r) => [r.repo, r.state, r.overrides, r.reason])).toEqual([
      ['plain', 'succeeded', undefined, undefined],
      ['own', 'succeeded', ['checks', 'scope'], undefined],
      ['bad', 'failed', undefined, '.nightshift.yml: checks.0.run: Required'],
    ]);
    const inputOf = (runId: string, activity: keyof Activities) =>
      runs.get(runId)!.calls.find((c) => c.activity === activity)!.input;
    expect(inputOf(done.repos[0].runId, 'runChecks')).toMatchObject({ checks: [{ name: 'value' }] });
    expect(inputOf(done.repos[0].runId, 'checkScope')).toMatchObject({ scope: { allow: ['src/**'] } });
    expect(inputOf(done.repos[1].runId, 'runChecks')).toMatchObject({
      checks: [{ name: 'own', run: './own-check.sh' }],
    });
    expect(inputOf(done.repos[1].runId, 'checkScope')).toMatchObject({ scope: { allow: ['src/**', 'lib/**'] } });
    // The bad repo's run never started.
    expect(runs.get(done.repos[2].runId)!.calls).toEqual([]);
  },
);

test.concurrent(
  'a campaign in batch mode: runs awaiting approval hold no slot; one batch decision (each run signalled) delivers all; it continues as new and loses nothing',
  async () => {
    const { id, handle } = await startCampaign(
      ['a', 'b', 'c', 'd'],
      { concurrency: 1, approvalMode: 'batch', continueAfterEvents: 30 },
      () => ({}),
    );
    const waiting = await campaignWhen(handle, (s) => s.counts.awaiting_approval === 4);
    expect(waiting.generation).toBeGreaterThan(0);
    const runIds = waiting.repos.map((r) => r.runId);
    for (const runId of runIds) await client.workflow.getHandle(runId).signal(approveSignal, { by: 'carol' });
    await handle.signal(batchDecisionSignal, { kind: 'approve', runs: runIds, by: 'carol', comment: 'all four' });
    const done = await client.workflow.getHandle(id).result();
    expect(done.status).toBe('succeeded');
    expect(done.counts).toMatchObject({ succeeded: 4 });
    expect(done.decisions).toMatchObject([{ kind: 'approve', by: 'carol', comment: 'all four', runs: runIds }]);
  },
);

test.concurrent(
  'a campaign paused starts no run until resumed; cancelled, its running run is cancelled (its sandbox torn down) and the queued never start',
  async () => {
    const { handle, repos } = await startCampaign(['p', 'q', 'r'], { concurrency: 1 }, () => ({
      runAgent: async (input) => {
        for (let i = 0; i < 100; i++) {
          await new Promise((r) => setTimeout(r, 100));
          Context.current().heartbeat();
        }
        return agentDid(input);
      },
    }));
    await handle.signal(pauseCampaignSignal, { by: 'carol' });
    await campaignWhen(handle, (s) => s.status === 'paused');
    await new Promise((r) => setTimeout(r, 1500));
    // What started before the pause goes on; nothing more started.
    expect((await handle.query(campaignStateQuery)).counts.queued).toBeGreaterThanOrEqual(2);
    await handle.signal(resumeCampaignSignal, { by: 'carol' });
    // Cancelled while its agent runs: its sandbox is held.
    const running = await campaignWhen(
      handle,
      (s) => s.status === 'running' && s.repos.some((r) => r.status === 'agent'),
    );
    const first = running.repos.find((r) => r.status === 'agent')!;
    await handle.signal(cancelCampaignSignal, { by: 'carol', comment: 'wrong change' });
    const done = await handle.result();
    expect(done.status).toBe('cancelled');
    expect(done.repos.map((r) => r.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(done.decisions).toMatchObject([{ kind: 'cancel', by: 'carol' }]);
    expect(done.proofId).toBe('campaign-proof-cancelled');
    const calls = (runId: string) => runs.get(runId)!.calls.map((c) => c.activity);
    expect(calls(first.runId)).toContain('teardownWorkspace');
    for (const r of repos.filter((x) => x.runId !== first.runId)) expect(calls(r.runId)).toEqual([]);
  },
);

test.concurrent(
  'a campaign whose runs opened pull requests stays open until each is merged: a merge counts only for its own run and pull request',
  async () => {
    const { handle, repos } = await startCampaign(['m1', 'm2'], { approvalMode: 'batch' }, () => ({}));
    await campaignWhen(handle, (s) => s.counts.awaiting_approval === 2);
    // Each ends as a forge run does: its pull request opened (reported here for it, as its runs here have no forge).
    const [m1, m2] = repos.map((r) => r.runId);
    for (const [runId, number] of [
      [m1, 7],
      [m2, 8],
    ] as const)
      await handle.signal(campaignRunSignal, {
        runId,
        status: 'succeeded',
        branch: `nightshift/${runId}`,
        pullRequest: { number, url: `https://forge.test/o/r/pulls/${number}` },
      });
    const succeeded = await campaignWhen(handle, (s) => s.status === 'succeeded');
    expect(succeeded.counts).toMatchObject({ succeeded: 2, merged: 0 });
    const at = '2026-01-02T03:04:05.000Z';
    // Another run's pull request, an unknown run: nothing.
    await handle.signal(campaignMergedSignal, { runId: m2, pullRequest: 7, at, by: 'gitea:ada' });
    await handle.signal(campaignMergedSignal, { runId: 'camp-0-other', pullRequest: 7, at, by: 'gitea:ada' });
    await handle.signal(campaignMergedSignal, {
      runId: m1,
      pullRequest: 7,
      at,
      by: 'gitea:ada',
      commit: 'c'.repeat(40),
    });
    const one = await campaignWhen(handle, (s) => s.counts.merged > 0);
    expect(one.counts).toMatchObject({ succeeded: 2, merged: 1 });
    expect(one.repos.map((r) => r.merged)).toEqual([{ at, by: 'gitea:ada', commit: 'c'.repeat(40) }, undefined]);
    expect(one.history.at(-1)!.counts).toMatchObject({ merged: 1 });
    // Still open for the other pull request's merge; once it is merged, it ends.
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await handle.signal(campaignMergedSignal, { runId: m2, pullRequest: 8, at, by: 'gitea:bo' });
    const done = await handle.result();
    expect(done).toMatchObject({ status: 'succeeded', counts: { succeeded: 2, merged: 2 } });
    expect(done.repos[1].merged).toEqual({ at, by: 'gitea:bo' });
    // The runs themselves still await their approval (their reports came from the test): not left behind.
    for (const runId of [m1, m2]) await client.workflow.getHandle(runId).cancel();
  },
);
