// `npm run bench:campaign`: a campaign over many local repos (NIGHTSHIFT_BENCH_REPOS, default 200) with real parts (a
// Temporal dev server, the API, workers, bwrap, git, the command agent), on one worker and on two: wall time, each
// run's own overhead (time not spent in its agent or checks), the campaign's history after continue-as-new, and
// GET /v1/campaigns/:id's latency while it runs, beside a single run's. Prints a table, writes
// bench/results/campaign-<date>.json. Asserts nothing.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startStack, type Stack } from '../cli/up';
import { loadConfig } from '../config';
import type { CampaignState } from '../contracts/campaign';
import { makeRepoIn } from '../testbed/makeRepo';
import { connected, startWorkerProcess } from '../testbed/workerProcess';
import { benchEnv, stopBench, writeResults } from './benchEnv';
import { percentiles, printTable, runBench, type Percentiles } from './stats';
import { ended, get, overhead, submit } from './submit';

const CAPACITY = 4;
const REPOS = Number(process.env.NIGHTSHIFT_BENCH_REPOS ?? 200);

const spec = {
  title: 'Write the marker',
  task: 'Write src/marker.txt.',
  agent: { kind: 'command', command: ['sh', '-c', 'echo done > src/marker.txt'] },
  checks: [{ name: 'marker', run: 'test -s src/marker.txt' }],
  scope: { allow: ['src/**'] },
  approval: { required: false },
};

interface Measured {
  label: string;
  repos: number;
  wallMs: number;
  overheadMs: Percentiles;
  /** The campaign's history: events of its last run, and how many runs came before it (continue-as-new). */
  historyEvents: number;
  generation: number;
  /** GET /v1/campaigns/:id while it ran. */
  getMs: Percentiles;
}

async function api(stack: Stack, method: string, route: string, body?: object): Promise<Response> {
  return fetch(`${stack.apiUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
}

async function measure(stack: Stack, repos: string[], label: string, concurrency: number): Promise<Measured> {
  const started = Date.now();
  const res = await api(stack, 'POST', '/v1/campaigns', { ...spec, repos, concurrency });
  if (res.status !== 201) throw new Error(`campaign refused: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const latencies: number[] = [];
  let state: CampaignState;
  for (;;) {
    const t0 = Date.now();
    state = (await (await api(stack, 'GET', `/v1/campaigns/${id}`)).json()) as CampaignState;
    latencies.push(Date.now() - t0);
    if (!['running', 'paused'].includes(state.status)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const wallMs = Date.now() - started;
  if (state.status !== 'succeeded') throw new Error(`campaign ${id} ended ${state.status}`);
  const runs = await Promise.all(state.repos.map((r) => get(stack, r.runId)));
  const history = await stack.client.workflow.getHandle(id).fetchHistory();
  return {
    label,
    repos: repos.length,
    wallMs,
    overheadMs: percentiles(runs.map(overhead)),
    historyEvents: history.events?.length ?? 0,
    generation: state.generation,
    getMs: percentiles(latencies),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-bench-campaign-'));
  console.log(`Nightshift campaign bench: ${REPOS} repos, ${os.cpus().length} cores, capacity ${CAPACITY} per worker`);
  const env = await benchEnv(dir, { NIGHTSHIFT_MAX_SANDBOXES: String(CAPACITY) });
  const stack = await startStack({ devServer: true, worker: true, api: true }, loadConfig(env));
  const workers: ChildProcess[] = [];
  try {
    const repos = Array.from({ length: REPOS }, () => makeRepoIn(dir, { 'src/.keep': '' }));
    console.log('a single run…');
    const single = await ended(stack, await submit(stack, { ...spec, repo: repos[0] }));
    console.log(`${REPOS} repos on 1 worker…`);
    const one = await measure(stack, repos, `${REPOS} repos, 1 worker`, CAPACITY);
    const second = startWorkerProcess({ ...env, TEMPORAL_ADDRESS: `127.0.0.1:${env.NIGHTSHIFT_TEMPORAL_PORT}` });
    workers.push(second);
    await connected(second);
    console.log(`${REPOS} repos on 2 workers…`);
    const two = await measure(stack, repos, `${REPOS} repos, 2 workers`, 2 * CAPACITY);

    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const p = (x: Percentiles) => `${(x.p50 / 1000).toFixed(2)} / ${(x.p95 / 1000).toFixed(2)} s`;
    console.log('');
    printTable([
      ['', 'wall', 'overhead per run p50/p95', 'history (events, generation)', 'GET p50/p95', 'single run'],
      ...[one, two].map((m) => [
        m.label,
        s(m.wallMs),
        p(m.overheadMs),
        `${m.historyEvents}, ${m.generation}`,
        `${m.getMs.p50} / ${m.getMs.p95} ms`,
        `overhead ${s(overhead(single))}`,
      ]),
    ]);
    writeResults('campaign', { singleOverheadMs: overhead(single), campaigns: [one, two] });
  } finally {
    await stopBench(stack, workers, dir);
  }
}

runBench(main);
