// `npm run bench`: what Nightshift itself costs, on this machine, with real parts (dev server, bwrap, git).
// Prints numbers; asserts nothing. Knobs: BENCH_EXECS (default 50), BENCH_RUNS (default 10).
// `npm run bench:sandbox` runs the sandbox part alone.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadConfig } from '../config';
import { unmountUnder } from '../sandbox/overlay';
import { benchEgress, benchSandbox } from './sandbox';
import { percentiles, stats } from './stats';
import { startStack } from '../cli/up';
import { prepareExampleRepo } from '../cli/example';
import { FINAL_STATUSES, type RunState } from '../contracts/run';

const runs = Number(process.env.BENCH_RUNS || 10);

async function benchPipeline(dir: string): Promise<void> {
  const ports = [18420, 17233, 18233].map((p) => p + Math.floor(Math.random() * 500));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NIGHTSHIFT_HOME: path.join(dir, 'home'),
    NIGHTSHIFT_PORT: String(ports[0]),
    NIGHTSHIFT_TEMPORAL_PORT: String(ports[1]),
    NIGHTSHIFT_TEMPORAL_UI_PORT: String(ports[2]),
  };
  delete env.TEMPORAL_ADDRESS;
  const started = Date.now();
  const stack = await startStack({ devServer: true, worker: true, api: true }, loadConfig(env));
  console.log(`start-up (dev server + worker + API):  ${Date.now() - started} ms`);
  const repo = prepareExampleRepo(stack.config.reposDir);
  const headers = { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' };
  const spec = (i: number, baseline: boolean) => ({
    title: `bench ${i}`,
    repo,
    agent: { kind: 'command', command: ['node', 'scripts/fix-rounding.js'] },
    checks: [{ name: 'test', run: 'node --test test/', baseline }],
    approval: { required: false },
  });
  const submit = async (i: number, baseline = true) =>
    (
      (await (
        await fetch(`${stack.apiUrl}/v1/runs`, { method: 'POST', headers, body: JSON.stringify(spec(i, baseline)) })
      ).json()) as { id: string }
    ).id;
  // Each poll is a workflow query the worker answers: poll gently, or the bench measures its own load.
  const finish = async (id: string, pollMs: number): Promise<RunState> => {
    for (;;) {
      const state = (await (await fetch(`${stack.apiUrl}/v1/runs/${id}`, { headers })).json()) as RunState;
      if (FINAL_STATUSES.includes(state.status)) return state;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  };
  /** Runs one after another; their total times and each stage's. */
  const oneByOne = async (first: number, baseline: boolean) => {
    const byStage: Record<string, number[]> = {};
    const totals: number[] = [];
    for (let i = first; i < first + runs; i++) {
      const t0 = Date.now();
      const state = await finish(await submit(i, baseline), 50);
      if (state.status !== 'succeeded') throw new Error(`bench run ended ${state.status}: ${state.failure?.reason}`);
      totals.push(Date.now() - t0);
      for (const s of state.stages) (byStage[s.stage] ??= []).push(s.durationMs ?? 0);
    }
    return { totals, byStage };
  };
  const { totals, byStage } = await oneByOne(0, true);
  console.log(`one run, submit → succeeded (example):  ${stats(totals)}`);
  for (const [stage, times] of Object.entries(byStage))
    console.log(`  stage ${stage.padEnd(10)}                    ${stats(times)}`);
  // What holding the checks against the base costs (docs/checks.md): the first run measures the base, the rest
  // read it from the cache and pay for the canary run only.
  const off = await oneByOne(100, false);
  const [first, ...cached] = byStage.checks;
  console.log(`checks stage, baseline off:              ${stats(off.byStage.checks)}`);
  console.log(
    `checks stage, baseline on (default):     first run ${first} ms (measures the base), then ${stats(cached)}`,
  );
  console.log(
    `  added per iteration (median, cached):  ${percentiles(cached).p50 - percentiles(off.byStage.checks).p50} ms`,
  );
  const serverPid = Number(
    execFileSync('pgrep', ['-f', `${stack.config.home}/temporal/temporal.db`], { encoding: 'utf8' })
      .trim()
      .split('\n')[0],
  );
  const cpu0 = machineCpu();
  const self0 = process.cpuUsage();
  const server0 = processCpuSeconds(serverPid);
  const t0 = Date.now();
  const ids = await Promise.all(Array.from({ length: runs }, (_, i) => submit(1000 + i)));
  const states = await Promise.all(ids.map((id) => finish(id, Number(process.env.BENCH_POLL_MS || 1000))));
  const wall = Date.now() - t0;
  const cpu1 = machineCpu();
  const busy = ((cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total)) * 100;
  const self = process.cpuUsage(self0);
  const selfSeconds = (self.user + self.system) / 1e6;
  const serverSeconds = processCpuSeconds(serverPid) - server0;
  const allSeconds = (cpu1.busy - cpu0.busy) / 1000;
  console.log(
    `${runs} runs in parallel:                  ${wall} ms wall, ${(runs / (wall / 1000)).toFixed(2)} runs/s, ${states.filter((s) => s.status === 'succeeded').length}/${runs} succeeded, machine CPU ${busy.toFixed(0)}% busy`,
  );
  console.log(
    `  CPU per run: ${(allSeconds / runs).toFixed(2)} s in all = worker + API ${(selfSeconds / runs).toFixed(2)} s, Temporal dev server ${(serverSeconds / runs).toFixed(2)} s, the rest (sandboxed agent and checks, git, bwrap) ${((allSeconds - selfSeconds - serverSeconds) / runs).toFixed(2)} s`,
  );
  const rss = process.memoryUsage().rss / 1024 ** 2;
  const server =
    Number(execFileSync('sh', ['-c', `ps -o rss= -C temporal | sort -n | tail -1`], { encoding: 'utf8' }).trim() || 0) /
    1024;
  console.log(
    `memory: worker + API process RSS ${rss.toFixed(0)} MiB, Temporal dev server RSS ${server.toFixed(0)} MiB`,
  );
  await stack.stop();
}

/** Busy and total CPU ticks of the whole machine (all processes: dev server, worker, sandboxes). */
function machineCpu(): { busy: number; total: number } {
  const ticks = os.cpus().map((c) => c.times);
  const total = ticks.reduce((n, t) => n + t.user + t.nice + t.sys + t.idle + t.irq, 0);
  const idle = ticks.reduce((n, t) => n + t.idle, 0);
  return { busy: total - idle, total };
}

/** user + system CPU seconds of a process so far, from /proc. */
function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-bench-'));
  try {
    console.log(
      `Nightshift bench on ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, node ${process.version}`,
    );
    await benchSandbox(dir);
    await benchEgress(dir);
    await benchPipeline(dir);
  } finally {
    await unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exit(1);
});
