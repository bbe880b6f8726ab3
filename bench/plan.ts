// `npm run bench:plan`: what a plan costs beyond its agents and checks, with real parts (a Temporal dev server, the
// API, workers, bwrap, git): 20 independent tasks on one worker and on two, and a chain of 5, beside a single run.
// Prints a table and writes bench/results/plan-<date>.json. Asserts nothing.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startStack, type Stack } from '../cli/up';
import { loadConfig } from '../config';
import { makeRepoIn } from '../testbed/makeRepo';
import { connected, startWorkerProcess } from '../testbed/workerProcess';
import { benchEnv, stopBench, writeResults } from './benchEnv';
import { percentiles, printTable, runBench, type Percentiles } from './stats';
import { ended, get, overhead, span, submit } from './submit';

const CAPACITY = 4;

/** A task (or a run) that writes its own file, checked by one command. */
const work = (id: string) => ({
  agent: { kind: 'command', command: ['sh', '-c', `echo ${id} > src/${id}.txt`] },
  checks: [{ name: 'file', run: `test -s src/${id}.txt` }],
});

interface Measured {
  label: string;
  tasks: number;
  wallMs: number;
  /** Per task: its run's time, start to end, less its agents' and checks' own. */
  overheadMs: Percentiles;
  /** Per task: from the moment it could start (its needs passed, or the plan began) to its run's start. */
  startGapMs: Percentiles;
  /** The integration: its whole run (merge, checks on the whole, proof, delivery). */
  integrationMs: number;
}

async function measurePlan(stack: Stack, repo: string, label: string, needs: (i: number) => string[], n: number) {
  const tasks = Array.from({ length: n }, (_, i) => ({
    id: `t${i}`,
    task: `write t${i}`,
    needs: needs(i),
    ...work(`t${i}`),
  }));
  const started = Date.now();
  const id = await submit(stack, {
    title: label,
    task: 'Write the files.',
    repo,
    ...work('all'),
    checks: [{ name: 'all', run: tasks.map((t) => `test -s src/${t.id}.txt`).join(' && ') }],
    scope: { allow: ['src/**'] },
    approval: { required: false },
    tasks,
  });
  const plan = await ended(stack, id);
  const wallMs = Date.now() - started;
  const runs = await Promise.all(plan.tasks!.map((t) => get(stack, t.runId)));
  const endOf = new Map(plan.tasks!.map((t) => [t.id, Date.parse(t.endedAt!)]));
  const gaps = plan.tasks!.map((t, i) => {
    const ready = Math.max(Date.parse(plan.createdAt), ...t.needs.map((x) => endOf.get(x)!));
    return Date.parse(runs[i].createdAt) - ready;
  });
  const integration = await get(stack, plan.integration!.runId);
  return {
    label,
    tasks: n,
    wallMs,
    overheadMs: percentiles(runs.map(overhead)),
    startGapMs: percentiles(gaps),
    integrationMs: span(integration),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-bench-plan-'));
  console.log(`Nightshift plan bench on ${os.cpus().length} cores, capacity ${CAPACITY} per worker`);
  const env = await benchEnv(dir, { NIGHTSHIFT_MAX_SANDBOXES: String(CAPACITY) });
  const stack = await startStack({ devServer: true, worker: true, api: true }, loadConfig(env));
  const workers: ChildProcess[] = [];
  try {
    const repo = makeRepoIn(dir, { 'src/.keep': '' });
    console.log('a single run…');
    const single = await ended(
      stack,
      await submit(stack, {
        title: 'single',
        task: 'Write a file.',
        repo,
        ...work('single'),
        scope: { allow: ['src/**'] },
        approval: { required: false },
      }),
    );
    console.log('20 independent tasks on 1 worker…');
    const one = await measurePlan(stack, repo, '20 independent, 1 worker', () => [], 20);
    const second = startWorkerProcess({ ...env, TEMPORAL_ADDRESS: `127.0.0.1:${env.NIGHTSHIFT_TEMPORAL_PORT}` });
    workers.push(second);
    await connected(second);
    console.log('20 independent tasks on 2 workers…');
    const two = await measurePlan(stack, repo, '20 independent, 2 workers', () => [], 20);
    console.log('a chain of 5 on 2 workers…');
    const chain = await measurePlan(stack, repo, 'chain of 5, 2 workers', (i) => (i ? [`t${i - 1}`] : []), 5);

    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const p = (x: Percentiles) => `${(x.p50 / 1000).toFixed(2)} / ${(x.p95 / 1000).toFixed(2)} s`;
    console.log('');
    printTable([
      ['', 'wall', 'overhead per task p50/p95', 'start gap p50/p95', 'integration', 'single run'],
      ...[one, two, chain].map((m) => [
        m.label,
        s(m.wallMs),
        p(m.overheadMs),
        p(m.startGapMs),
        s(m.integrationMs),
        `overhead ${s(overhead(single))}`,
      ]),
    ]);
    const measured: Measured[] = [one, two, chain];
    writeResults('plan', { singleOverheadMs: overhead(single), plans: measured });
  } finally {
    await stopBench(stack, workers, dir);
  }
}

runBench(main);
