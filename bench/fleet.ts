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
import { freePort } from '../temporal/ports';
import { makeRepoIn } from '../testbed/repos';
import { spec, VALUE_REPO } from '../testbed/specs';
import { connected, exited, startWorkerProcess, workerNamePrefix } from '../testbed/workerProcess';
import type { RunState } from '../workflows/types';
import { benchSandbox } from './sandbox';
import { percentiles, type Percentiles } from './stats';

const flag = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const RUNS = flag('--runs', 50);
/** Concurrent sandboxes per worker (NIGHTSHIFT_MAX_SANDBOXES), the same for every worker. */
const CAPACITY = flag('--capacity', 4);
const LATENCY_RUNS = Math.min(RUNS, 10);
const RESUMES = 3;
// A lost worker is noticed after this (NIGHTSHIFT_HEARTBEAT_TIMEOUT, the product's default too).
const HEARTBEAT = process.env.NIGHTSHIFT_HEARTBEAT_TIMEOUT || '10s';

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

/** The run's result, waited for on Temporal (a long poll: no query load on the workers); a run that did not succeed is told. */
function outcome(fleet: Fleet, id: string): Promise<RunState | undefined> {
  return fleet.stack.client.workflow.getHandle(id).result().then(
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

const overheadOf = (s: RunState) => Date.parse(s.updatedAt) - Date.parse(s.createdAt) - (s.agent?.durationMs ?? 0) - s.checks.reduce((n, c) => n + c.durationMs, 0);
const submitToAgentOf = (s: RunState) => Date.parse(s.stages.find((x) => x.stage === 'agent')!.startedAt) - Date.parse(s.createdAt);

function summarize(states: RunState[], submitted: number, wallMs: number, fleet: Fleet): Batch {
  return {
    wallMs,
    submitted,
    succeeded: states.length,
    runsPerMinute: states.length / (wallMs / 60_000),
    overheadMs: percentiles(states.map(overheadOf)),
    submitToAgentMs: percentiles(states.map(submitToAgentOf)),
    peakWorkerRssMiB: Math.max(...fleet.workers.map((w) => peakRssMiB(w.pid!))),
    runsPerWorker: fleet.workers.map((w) => states.filter((s) => s.stages.find((x) => x.stage === 'provision')?.summary?.startsWith(`workspace on ${workerNamePrefix(w)}`)).length),
  };
}

/** `n` runs submitted at once; waits for all of them. */
async function batch(fleet: Fleet, n: number, agent: string, label: string): Promise<Batch> {
  const t0 = Date.now();
  const ids = await Promise.all(Array.from({ length: n }, (_, i) => submit(fleet, agent, `${label} ${i}`)));
  const states = (await Promise.all(ids.map((id) => outcome(fleet, id)))).filter((s): s is RunState => s !== undefined);
  const result = summarize(states, n, Date.now() - t0, fleet);
  console.log(`  ${label}: ${result.succeeded}/${n} succeeded in ${(result.wallMs / 1000).toFixed(1)} s (runs per worker: ${result.runsPerWorker.join(', ')})`);
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

/** Kill the worker running a run's agent; time from the kill until the run has succeeded on another worker. */
async function resumeAfterKill(fleet: Fleet, i: number): Promise<number> {
  const id = await submit(fleet, 'echo 2 > src/value.txt; sleep 5', `resume ${i}`);
  const handle = fleet.stack.client.workflow.getHandle(id);
  for (;;) {
    const state = (await handle.query('state')) as RunState;
    const holder = state.status === 'agent' && fleet.workers.find((w) => state.workspace?.worker.startsWith(workerNamePrefix(w)));
    if (holder) {
      await sleep(1000);
      const killedAt = Date.now();
      holder.kill('SIGKILL');
      await exited(holder);
      fleet.workers = fleet.workers.filter((w) => w !== holder);
      const done = await outcome(fleet, id);
      if (!done) throw new Error(`run ${id} did not succeed after its worker was killed`);
      const ms = Date.now() - killedAt;
      // A supervisor restarts the dead worker; it sweeps the sandbox left behind.
      await addWorkers(fleet, 1);
      return ms;
    }
    await sleep(200);
  }
}

/** `n` empty activity round trips on a worker in this process: the floor under every stage. */
async function activityFloor(stack: Stack, address: string, n: number): Promise<number[]> {
  const connection = await NativeConnection.connect({ address });
  try {
    const worker = await Worker.create({ connection, taskQueue: 'bench-floor', workflowsPath: require.resolve('./floorWorkflow'), activities: { noop: async () => undefined } });
    return await worker.runUntil(stack.client.workflow.execute('activityRoundTrips', { taskQueue: 'bench-floor', workflowId: `floor-${Date.now()}`, args: [n] }));
  } finally {
    await connection.close();
  }
}

const fmt = (p: Percentiles) => `${(p.p50 / 1000).toFixed(2)} / ${(p.p95 / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-bench-fleet-'));
  const loadBefore = os.loadavg();
  console.log(`Nightshift fleet bench on ${os.cpus().length} cores, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; ${RUNS} runs, capacity ${CAPACITY} per worker, heartbeat timeout ${HEARTBEAT}`);
  const bundle = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundle, (await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} } })).code);
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
  const fleet: Fleet = { stack, env: { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${env.NIGHTSHIFT_TEMPORAL_PORT}` }, repo: makeRepoIn(dir, VALUE_REPO), workers: [] };
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

    console.log(`2 workers: ${RUNS} at once, ${CAPACITY * 4} waiting runs, ${RESUMES} worker kills…`);
    await addWorkers(fleet, 2);
    const two = await batch(fleet, RUNS, TRIVIAL_AGENT, `${RUNS} runs on 2 workers`);
    const scaleTwo = await batch(fleet, CAPACITY * 4, WAITING_AGENT, 'waiting runs on 2 workers');
    const resumes: number[] = [];
    for (let i = 0; i < RESUMES; i++) resumes.push(await resumeAfterKill(fleet, i));
    await stopWorkers(fleet);

    const speedup = scaleOne.wallMs / scaleTwo.wallMs;
    const resume = percentiles(resumes);
    const rows: [string, string, string, string, string][] = [
      ['', '1 worker', '2 workers', 'floor', 'target'],
      ['overhead p50/p95, one run at a time', fmt(latency.overheadMs), '', `activity ${activity.p50.toFixed(0)} ms, bwrap exec ${percentiles(bwrap.execOnly).p50.toFixed(0)} ms`, 'p50 ≤ 2 s'],
      ['submit → agent p50/p95, one at a time', fmt(latency.submitToAgentMs), '', '', ''],
      [`overhead p50/p95, ${RUNS} at once (incl. queueing)`, fmt(one.overheadMs), fmt(two.overheadMs), '', ''],
      [`submit → agent p50/p95, ${RUNS} at once`, fmt(one.submitToAgentMs), fmt(two.submitToAgentMs), '', ''],
      ['runs succeeded', `${one.succeeded}/${RUNS}`, `${two.succeeded}/${RUNS}`, '', 'none lost'],
      ['throughput (runs/min)', one.runsPerMinute.toFixed(1), two.runsPerMinute.toFixed(1), '', ''],
      ['peak worker RSS', `${one.peakWorkerRssMiB.toFixed(0)} MiB`, `${two.peakWorkerRssMiB.toFixed(0)} MiB`, '', ''],
      [`waiting batch (${CAPACITY * 4} × sleep ${WAIT_S})`, `${(scaleOne.wallMs / 1000).toFixed(1)} s`, `${(scaleTwo.wallMs / 1000).toFixed(1)} s (×${speedup.toFixed(2)})`, '', '≥ 1.8×'],
      ['resume after SIGKILL p50/max', '', `${(resume.p50 / 1000).toFixed(1)} / ${(Math.max(...resumes) / 1000).toFixed(1)} s`, `heartbeat timeout ${HEARTBEAT}`, '≤ 30 s'],
    ];
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    console.log('');
    for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));
    const loadAfter = os.loadavg();
    console.log(`load average after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`);

    const results = path.resolve(__dirname, '..', '..', 'bench', 'results');
    mkdirSync(results, { recursive: true });
    const file = path.join(results, `fleet-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const floors = { activityRoundTripMs: activity, bwrapExecMs: percentiles(bwrap.execOnly), bwrapCycleMs: percentiles(bwrap.cycle) };
    writeFileSync(file, JSON.stringify({ machine: { cores: os.cpus().length, loadBefore, loadAfter }, runs: RUNS, capacity: CAPACITY, heartbeatTimeout: HEARTBEAT, floors, latency, oneWorker: one, twoWorkers: two, scaling: { oneWorkerMs: scaleOne.wallMs, twoWorkersMs: scaleTwo.wallMs, speedup }, resumeAfterKillMs: resumes }, null, 2));
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  } finally {
    for (const w of fleet.workers) w.kill('SIGKILL');
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`bench failed: ${err.message}`);
    process.exit(1);
  },
);
