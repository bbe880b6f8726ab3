// `npm run bench:fleet [-- --runs N]`: what a fleet of `nightshift worker` processes costs and how it scales, with
// real parts (a Temporal dev server, worker processes, bwrap, git), each number beside its floor measured in the
// same run. Prints a table and writes bench/results/fleet-<date>.json. Asserts nothing.
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startStack, type Stack } from '../cli/up';
import { loadConfig } from '../config';
import { unmountUnder } from '../sandbox/overlay';
import { freePort } from '../temporal/ports';
import { makeRepoIn } from '../testbed/makeRepo';
import { spec, VALUE_REPO } from '../testbed/specs';
import { connected, exited, startWorkerProcess, workerNamePrefix } from '../testbed/workerProcess';
import { FINAL_STATUSES, type RunState } from '../contracts/run';
import { cpuHogs, historyOf, movedWhileAlive, resumeBreakdown, type ResumeBreakdown } from './resume';
import { benchSandbox } from './sandbox';
import { percentiles, printTable, runBench, type Percentiles } from './stats';

const flag = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const RUNS = flag('--runs', 50);
/** Concurrent sandboxes per worker (NIGHTSHIFT_MAX_SANDBOXES), the same for every worker. */
const CAPACITY = flag('--capacity', 4);
const LATENCY_RUNS = Math.min(RUNS, 10);
/** Workers SIGKILLed mid-agent on a quiet machine, then on a busy one (every core kept busy by HOGS processes). */
const RESUMES = flag('--resumes', 5);
const BUSY_RESUMES = flag('--busy-resumes', 3);
const HOGS = flag('--hogs', 2 * os.cpus().length);
// A lost worker is noticed after this (NIGHTSHIFT_HEARTBEAT_TIMEOUT; unset = the product's default).
const HEARTBEAT = process.env.NIGHTSHIFT_HEARTBEAT_TIMEOUT || `${loadConfig({}).heartbeatTimeoutMs / 1000}s`;

const TRIVIAL_AGENT = 'echo 2 > src/value.txt';
// An agent that mostly waits (on its model, say: real ones wait minutes): the batch measures Nightshift's scaling, not
// the CPU's. At 10 s the runs' own CPU work (clone, sandbox, checks: about 1-1.5 CPU-s each) saturates 2 cores.
const WAIT_S = flag('--wait', 30);
const WAITING_AGENT = `sleep ${WAIT_S}; echo 2 > src/value.txt`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Fleet {
  stack: Stack;
  env: NodeJS.ProcessEnv;
  repo: string;
  workers: ChildProcess[];
  /**
   * When the bench killed each worker, by its name's prefix: a run moved off a worker before that was a false alarm.
   */
  deaths: Map<string, number>;
}

interface Batch {
  wallMs: number;
  submitted: number;
  succeeded: number;
  runsPerMinute: number;
  /** End to end (workflow start → ended, sandbox gone) minus the agent's and checks' own run time. */
  overheadMs: Percentiles;
  submitToAgentMs: Percentiles;
  peakWorkerRssMiB: number;
  /** How many runs each worker took (claimed through the shared queue): the balance of the fleet. */
  runsPerWorker: number[];
}

async function addWorkers(fleet: Fleet, n: number): Promise<void> {
  const started = Array.from({ length: n }, () => startWorkerProcess(fleet.env));
  await Promise.all(started.map((w) => connected(w)));
  fleet.workers.push(...started);
}

async function stopWorkers(fleet: Fleet): Promise<void> {
  for (const w of fleet.workers) w.kill('SIGTERM');
  await Promise.all(fleet.workers.map(exited));
  fleet.workers = [];
}

/** Peak resident memory of a process so far (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? 0) / 1024;
}

async function submit(fleet: Fleet, agent: string, title: string): Promise<string> {
  const res = await fetch(`${fleet.stack.apiUrl}/v1/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fleet.stack.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(spec(fleet.repo, agent, { title, approval: { required: false } })),
  });
  if (res.status !== 202) throw new Error(`submit failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/**
 * The run's result, waited for on Temporal (a long poll: no query load on the workers); a run that did not succeed is
 * told.
 */
function outcome(fleet: Fleet, id: string): Promise<RunState | undefined> {
  return fleet.stack.client.workflow
    .getHandle(id)
    .result()
    .then(
      (s: RunState) => {
        if (s.status !== 'succeeded') console.log(`  run ${id} ended ${s.status}`);
        return s.status === 'succeeded' ? s : undefined;
      },
      (err: Error & { cause?: Error }) => {
        console.log(`  run ${id} did not succeed: ${(err.cause?.message ?? err.message).split('\n')[0]}`);
        return undefined;
      },
    );
}

/**
 * The run's state once it has ended, polled: a run moved off a dead worker has ended (succeeded, delivered) well before
 * its workflow completes, which waits for the dead worker's teardown to time out in its queue (2 minutes).
 */
async function ended(fleet: Fleet, id: string): Promise<RunState> {
  for (;;) {
    const state = await stateOf(fleet, id);
    if (state && FINAL_STATUSES.includes(state.status)) return state;
    await sleep(250);
  }
}

/** The run's state; none while a query cannot be answered (the worker it was sent to has just been killed). */
function stateOf(fleet: Fleet, id: string): Promise<RunState | undefined> {
  return fleet.stack.client.workflow
    .getHandle(id)
    .query<RunState>('state')
    .catch(() => undefined);
}

const overheadOf = (s: RunState) =>
  Date.parse(s.updatedAt) -
  Date.parse(s.createdAt) -
  (s.agent?.durationMs ?? 0) -
  s.checks.reduce((n, c) => n + c.durationMs, 0);
const submitToAgentOf = (s: RunState) =>
  Date.parse(s.stages.find((x) => x.stage === 'agent')!.startedAt) - Date.parse(s.createdAt);

function summarize(states: RunState[], submitted: number, wallMs: number, fleet: Fleet): Batch {
  return {
    wallMs,
    submitted,
    succeeded: states.length,
    runsPerMinute: states.length / (wallMs / 60_000),
    overheadMs: percentiles(states.map(overheadOf)),
    submitToAgentMs: percentiles(states.map(submitToAgentOf)),
    peakWorkerRssMiB: Math.max(...fleet.workers.map((w) => peakRssMiB(w.pid!))),
    runsPerWorker: fleet.workers.map(
      (w) =>
        states.filter((s) =>
          s.stages.find((x) => x.stage === 'provision')?.summary?.startsWith(`workspace on ${workerNamePrefix(w)}`),
        ).length,
    ),
  };
}

/** `n` runs submitted at once; waits for all of them. */
async function batch(fleet: Fleet, n: number, agent: string, label: string): Promise<Batch> {
  const t0 = Date.now();
  const ids = await Promise.all(Array.from({ length: n }, (_, i) => submit(fleet, agent, `${label} ${i}`)));
  const states = (await Promise.all(ids.map((id) => outcome(fleet, id)))).filter((s): s is RunState => s !== undefined);
  const result = summarize(states, n, Date.now() - t0, fleet);
  console.log(
    `  ${label}: ${result.succeeded}/${n} succeeded in ${(result.wallMs / 1000).toFixed(1)} s (runs per worker: ${result.runsPerWorker.join(', ')})`,
  );
  return result;
}

/** One run at a time: the overhead without queueing for a sandbox slot. */
async function oneByOne(fleet: Fleet, n: number): Promise<Batch> {
  const states: RunState[] = [];
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const state = await outcome(fleet, await submit(fleet, TRIVIAL_AGENT, `latency ${i}`));
    if (state) states.push(state);
  }
  return summarize(states, n, Date.now() - t0, fleet);
}

const secs = (ms: number) => (ms / 1000).toFixed(1);

interface Kill {
  id: string;
  /** Kill → the run succeeded on another worker. */
  doneMs: number;
  /** Kill → each step of the move (from the run's history). */
  steps: ResumeBreakdown;
}

/**
 * Kill the worker running a run's agent; time from the kill until the run runs its agent again, and until it succeeded,
 * on another worker.
 */
async function resumeAfterKill(fleet: Fleet, label: string): Promise<Kill> {
  const id = await submit(fleet, 'echo 2 > src/value.txt; sleep 5', label);
  for (;;) {
    const state = await stateOf(fleet, id);
    const holder =
      state?.status === 'agent' && fleet.workers.find((w) => state.workspace?.worker.startsWith(workerNamePrefix(w)));
    if (holder) {
      await sleep(1000);
      const killedAt = Date.now();
      holder.kill('SIGKILL');
      fleet.deaths.set(workerNamePrefix(holder), killedAt);
      await exited(holder);
      fleet.workers = fleet.workers.filter((w) => w !== holder);
      // A supervisor restarts the dead worker at once; it sweeps the sandbox left behind.
      const restarted = addWorkers(fleet, 1);
      const done = await ended(fleet, id);
      if (done.status !== 'succeeded') throw new Error(`run ${id} ended ${done.status} after its worker was killed`);
      const doneMs = Date.parse(done.updatedAt) - killedAt;
      const steps = resumeBreakdown(await historyOf(fleet.stack.client, id), killedAt);
      if (!steps) throw new Error(`run ${id} succeeded without a lost worker in its history`);
      console.log(
        `  ${label}: noticed ${secs(steps.noticed)} s, resumed ${secs(steps.resumed)} s, succeeded ${secs(doneMs)} s after the kill`,
      );
      await restarted;
      return { id, doneMs, steps };
    }
    await sleep(200);
  }
}

/** `n` runs in flight, each followed by another as it ends, until stopped; resolves to the ids of all of them. */
function keepBusy(fleet: Fleet, n: number, agent: string): { stop(): Promise<string[]> } {
  const ids: string[] = [];
  let stopped = false;
  const lanes = Array.from({ length: n }, async (_, lane) => {
    for (let i = 0; !stopped; i++) {
      const id = await submit(fleet, agent, `busy ${lane}.${i}`);
      ids.push(id);
      const state = await ended(fleet, id);
      if (state.status !== 'succeeded') console.log(`  run ${id} ended ${state.status}`);
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(lanes);
      return ids;
    },
  };
}

interface Resumes {
  quiet: Kill[];
  busy: Kill[];
  moves: number;
  falseAlarms: string[];
}

/**
 * Workers killed mid-agent, one at a time, first on a quiet machine, then with every core kept busy and other runs
 * going; then, in every run of both, each move off a worker is checked against when that worker died.
 */
async function resumePhase(fleet: Fleet): Promise<Resumes> {
  const quiet: Kill[] = [];
  for (let i = 0; i < RESUMES; i++) quiet.push(await resumeAfterKill(fleet, `resume ${i}`));
  const hogs = cpuHogs(HOGS);
  const busy: Kill[] = [];
  let others: string[] = [];
  try {
    const background = keepBusy(fleet, CAPACITY, `sleep 10; echo 2 > src/value.txt`);
    try {
      await sleep(5000);
      for (let i = 0; i < BUSY_RESUMES; i++) busy.push(await resumeAfterKill(fleet, `resume under load ${i}`));
    } finally {
      others = await background.stop();
    }
  } finally {
    hogs.stop();
  }
  const checked = await movedWhileAlive(
    fleet.stack.client,
    [...quiet, ...busy].map((k) => k.id).concat(others),
    fleet.deaths,
  );
  for (const f of checked.falseAlarms) console.log(`  false alarm: ${f}`);
  console.log(`  ${others.length} runs beside the busy kills; ${checked.moves} moves in all`);
  return { quiet, busy, ...checked };
}

const p50p90 = (values: number[]) => {
  const p = percentiles(values);
  return `${secs(p.p50)} / ${secs(p.p90)} s`;
};

function resumeRows(r: Resumes): [string, string, string, string, string][] {
  const steps = (kills: Kill[]) =>
    (['noticed', 'workflowTask', 'claimed', 'provisioned'] as const)
      .map((k) => secs(percentiles(kills.map((x) => x.steps[k])).p50))
      .join(' / ') + ' s';
  return [
    [
      `resume after SIGKILL p50/p90 (kill → agent running again elsewhere; ${r.quiet.length} kills)`,
      '',
      p50p90(r.quiet.map((k) => k.steps.resumed)),
      `heartbeat timeout ${HEARTBEAT}`,
      '≤ 10 s p50',
    ],
    ['  p50 kill → noticed / workflow task / claimed / provisioned', '', steps(r.quiet), '', ''],
    [
      '  kill → run succeeded p50/p90 (the 5 s agent again, checks, delivery)',
      '',
      p50p90(r.quiet.map((k) => k.doneMs)),
      '',
      '',
    ],
    ...(r.busy.length
      ? ([
          [
            `resume p50/p90, busy (${HOGS} CPU hogs, ${CAPACITY} runs beside; ${r.busy.length} kills)`,
            '',
            p50p90(r.busy.map((k) => k.steps.resumed)),
            '',
            '',
          ],
          ['  p50 kill → noticed / workflow task / claimed / provisioned', '', steps(r.busy), '', ''],
        ] as [string, string, string, string, string][])
      : []),
    [
      'runs moved while their worker was alive (quiet + busy)',
      '',
      `${r.falseAlarms.length} of ${r.moves} moves`,
      '',
      '0',
    ],
  ];
}

interface SpreadKill {
  /** One run alone, submit → ended. */
  singleMs: number;
  /** The batch, submit → every run ended, with one of three workers SIGKILLed 3 s in. */
  batchMs: number;
  runs: number;
  succeeded: number;
  moved: number;
  /** Moved runs that the fleet registry told their worker was gone (a `workerLost` signal in their history). */
  toldByRegistry: number;
}

/**
 * Ten runs over three workers, one SIGKILLed 3 s after they are submitted, with runs on it before, during and after
 * their agents (issue 24): the batch against one run alone, and a bound of two runs' time plus 30 s.
 */
async function killBetweenStages(fleet: Fleet, runs = 10): Promise<SpreadKill> {
  const alone = Date.now();
  // Half the agents are done in a moment (past their agents at the kill), half work 8 s; the one alone works 8 s.
  const agent = (seconds: number) => `echo 2 > src/value.txt; sleep ${seconds}`;
  await ended(fleet, await submit(fleet, agent(8), 'alone'));
  const singleMs = Date.now() - alone;
  const t0 = Date.now();
  const ids = await Promise.all(
    Array.from({ length: runs }, (_, i) => submit(fleet, agent(i % 2 ? 8 : 0), `spread ${i}`)),
  );
  await sleep(3000 - (Date.now() - t0));
  const victim = fleet.workers[0];
  fleet.deaths.set(workerNamePrefix(victim), Date.now());
  victim.kill('SIGKILL');
  await exited(victim);
  fleet.workers = fleet.workers.filter((w) => w !== victim);
  const states = await Promise.all(ids.map((id) => ended(fleet, id)));
  const batchMs = Date.now() - t0;
  const moved = states.filter((s) => s.reprovisions > 0);
  let toldByRegistry = 0;
  for (const s of moved) {
    const history = await historyOf(fleet.stack.client, s.id);
    if (history.some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'workerLost')) toldByRegistry++;
  }
  const succeeded = states.filter((s) => s.status === 'succeeded').length;
  console.log(
    `  ${runs} runs, one of 3 workers killed 3 s in: ${succeeded}/${runs} succeeded in ${secs(batchMs)} s (one alone ${secs(singleMs)} s); ${moved.length} moved, ${toldByRegistry} told by the registry`,
  );
  return { singleMs, batchMs, runs, succeeded, moved: moved.length, toldByRegistry };
}

function spreadKillRows(k: SpreadKill): [string, string, string, string, string][] {
  return [
    [
      `${k.runs} runs over 3 workers, one SIGKILLed 3 s in: all ended`,
      '',
      `${secs(k.batchMs)} s (${k.succeeded}/${k.runs}; ${k.moved} moved, ${k.toldByRegistry} told by the registry)`,
      `one run alone ${secs(k.singleMs)} s`,
      `≤ ${secs(2 * k.singleMs + 30_000)} s (2 runs + 30 s)`,
    ],
  ];
}

/** `n` empty activity round trips on a worker in this process: the floor under every stage. */
async function activityFloor(stack: Stack, address: string, n: number): Promise<number[]> {
  const connection = await NativeConnection.connect({ address });
  try {
    const worker = await Worker.create({
      connection,
      taskQueue: 'bench-floor',
      workflowsPath: require.resolve('./floorWorkflow'),
      activities: { noop: async () => undefined },
    });
    return await worker.runUntil(
      stack.client.workflow.execute('activityRoundTrips', {
        taskQueue: 'bench-floor',
        workflowId: `floor-${Date.now()}`,
        args: [n],
      }),
    );
  } finally {
    await connection.close();
  }
}

const fmt = (p: Percentiles) => `${(p.p50 / 1000).toFixed(2)} / ${(p.p95 / 1000).toFixed(2)} s`;

/** The bench's stack (dev server and API, no worker) on a fresh home, and its repo; workers are added per phase. */
async function startFleet(dir: string): Promise<Fleet> {
  const bundle = path.join(dir, 'workflow-bundle.js');
  writeFileSync(
    bundle,
    (
      await bundleWorkflowCode({
        workflowsPath: require.resolve('../workflows'),
        logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} },
      })
    ).code,
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NIGHTSHIFT_HOME: path.join(dir, 'home'),
    NIGHTSHIFT_REPOS_DIR: dir, // the bench's repo is in it
    NIGHTSHIFT_PORT: String(await freePort()),
    NIGHTSHIFT_TEMPORAL_PORT: String(await freePort()),
    NIGHTSHIFT_TEMPORAL_UI_PORT: String(await freePort()),
    NIGHTSHIFT_MAX_SANDBOXES: String(CAPACITY),
    NIGHTSHIFT_HEARTBEAT_TIMEOUT: HEARTBEAT,
    NIGHTSHIFT_WORKFLOW_BUNDLE: bundle,
  };
  delete env.TEMPORAL_ADDRESS;
  const stack = await startStack({ devServer: true, worker: false, api: true }, loadConfig(env));
  return {
    stack,
    env: { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${env.NIGHTSHIFT_TEMPORAL_PORT}` },
    repo: makeRepoIn(dir, VALUE_REPO),
    workers: [],
    deaths: new Map(),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-bench-fleet-'));
  const loadBefore = os.loadavg();
  console.log(
    `Nightshift fleet bench on ${os.cpus().length} cores, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; ${RUNS} runs, capacity ${CAPACITY} per worker, heartbeat timeout ${HEARTBEAT}`,
  );
  const fleet = await startFleet(dir);
  const { stack } = fleet;
  try {
    console.log('floors…');
    const bwrap = await benchSandbox(dir);
    const activity = percentiles(await activityFloor(stack, fleet.env.TEMPORAL_ADDRESS!, 50));

    console.log(`1 worker: ${LATENCY_RUNS} runs one by one, then ${RUNS} at once, then ${CAPACITY * 4} waiting runs…`);
    await addWorkers(fleet, 1);
    const latency = await oneByOne(fleet, LATENCY_RUNS);
    const one = await batch(fleet, RUNS, TRIVIAL_AGENT, `${RUNS} runs on 1 worker`);
    const scaleOne = await batch(fleet, CAPACITY * 4, WAITING_AGENT, 'waiting runs on 1 worker');
    await stopWorkers(fleet);

    console.log(
      `2 workers: ${RUNS} at once, ${CAPACITY * 4} waiting runs, ${RESUMES} worker kills, ${BUSY_RESUMES} more beside other runs with ${HOGS} CPU hogs…`,
    );
    await addWorkers(fleet, 2);
    const two = await batch(fleet, RUNS, TRIVIAL_AGENT, `${RUNS} runs on 2 workers`);
    const scaleTwo = await batch(fleet, CAPACITY * 4, WAITING_AGENT, 'waiting runs on 2 workers');
    const resumes = await resumePhase(fleet);
    console.log('3 workers: ten runs, one worker SIGKILLed 3 s after they are submitted…');
    await addWorkers(fleet, 1);
    const spread = await killBetweenStages(fleet);
    await stopWorkers(fleet);

    const speedup = scaleOne.wallMs / scaleTwo.wallMs;
    const rows: [string, string, string, string, string][] = [
      ['', '1 worker', '2 workers', 'floor', 'target'],
      [
        'overhead p50/p95, one run at a time',
        fmt(latency.overheadMs),
        '',
        `activity ${activity.p50.toFixed(0)} ms, bwrap exec ${percentiles(bwrap.execOnly).p50.toFixed(0)} ms`,
        'p50 ≤ 2 s',
      ],
      ['submit → agent p50/p95, one at a time', fmt(latency.submitToAgentMs), '', '', ''],
      [`overhead p50/p95, ${RUNS} at once (incl. queueing)`, fmt(one.overheadMs), fmt(two.overheadMs), '', ''],
      [`submit → agent p50/p95, ${RUNS} at once`, fmt(one.submitToAgentMs), fmt(two.submitToAgentMs), '', ''],
      ['runs succeeded', `${one.succeeded}/${RUNS}`, `${two.succeeded}/${RUNS}`, '', 'none lost'],
      ['throughput (runs/min)', one.runsPerMinute.toFixed(1), two.runsPerMinute.toFixed(1), '', ''],
      ['peak worker RSS', `${one.peakWorkerRssMiB.toFixed(0)} MiB`, `${two.peakWorkerRssMiB.toFixed(0)} MiB`, '', ''],
      [
        `waiting batch (${CAPACITY * 4} × sleep ${WAIT_S})`,
        `${(scaleOne.wallMs / 1000).toFixed(1)} s`,
        `${(scaleTwo.wallMs / 1000).toFixed(1)} s (×${speedup.toFixed(2)})`,
        '',
        '≥ 1.8×',
      ],
      ...resumeRows(resumes),
      ...spreadKillRows(spread),
    ];
    console.log('');
    printTable(rows);
    const loadAfter = os.loadavg();
    console.log(`load average after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`);

    const results = path.resolve(__dirname, '..', '..', 'bench', 'results');
    mkdirSync(results, { recursive: true });
    const file = path.join(results, `fleet-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const floors = {
      activityRoundTripMs: activity,
      bwrapExecMs: percentiles(bwrap.execOnly),
      bwrapCycleMs: percentiles(bwrap.cycle),
    };
    writeFileSync(
      file,
      JSON.stringify(
        {
          machine: { cores: os.cpus().length, loadBefore, loadAfter },
          runs: RUNS,
          capacity: CAPACITY,
          heartbeatTimeout: HEARTBEAT,
          floors,
          latency,
          oneWorker: one,
          twoWorkers: two,
          scaling: { oneWorkerMs: scaleOne.wallMs, twoWorkersMs: scaleTwo.wallMs, speedup },
          resumes,
          spread,
        },
        null,
        2,
      ),
    );
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  } finally {
    for (const w of fleet.workers) w.kill('SIGKILL');
    await stack.stop();
    await unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
