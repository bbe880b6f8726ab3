// `npm run bench:env`: what the setup stage and the environment cache save, with real parts: a Temporal dev server,
// `nightshift worker` processes, bwrap, overlays, and a real `npm ci` of a fixture with a real lock file (mocha and
// friends, 110 packages) through the egress proxy, from the registry npm's own configuration names; and a Go module
// with a real dependency (bench/envGo.ts) on the host's Go, offered as a toolchain. Each number beside its floor and
// its target. Prints a table; asserts nothing. BENCH_ENV_ROWS=npm,go (the default) chooses the rows.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startStack, type Stack } from '../cli/up';
import { loadConfig } from '../config';
import { unmountUnder } from '../sandbox/overlay';
import { benchEnv } from './benchEnv';
import { makeRepoIn } from '../testbed/makeRepo';
import { connected, exited, startWorkerProcess } from '../testbed/workerProcess';
import { goRoot, goRows } from './envGo';
import { copyFloorMs, entryDir, measuredRun, met, seconds, warmRows, type Measured } from './envRuns';
import { printTable, runBench } from './stats';

const FIXTURE = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'npm-app');

/** The fixture's files, for a repo of the bench's own. */
function fixtureFiles(dir = FIXTURE, prefix = ''): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) Object.assign(files, fixtureFiles(full, `${prefix}${name}/`));
    else files[`${prefix}${name}`] = readFileSync(full, 'utf8');
  }
  return files;
}

/** The registry npm uses here, as `host[:port]` for a network rule: read from npm's configuration, never assumed. */
function registryRule(): string {
  const url = new URL(execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim());
  return url.port ? `${url.hostname}:${url.port}` : url.hostname;
}

/**
 * The agent breaks the module's answer in its first iteration and fixes it in its second, so the checks run twice
 * (the second time with nothing to install); a marker in the workspace tells the iterations apart.
 */
const AGENT =
  'if [ -f notes/first ]; then sed -i "s/total - n/total + n/" index.js; else mkdir -p notes && touch notes/first && sed -i "s/total + n/total - n/" index.js; fi';

function npmSpec(repo: string, registry: string): object {
  return {
    title: 'Environment bench',
    task: 'Keep the answer right.',
    repo,
    agent: { kind: 'command', command: ['sh', '-c', AGENT] },
    setup: { run: ['npm ci --no-audit --no-fund'], network: [registry] },
    checks: [{ name: 'test', run: 'npm test' }],
    limits: { iterations: 3 },
    approval: { required: false },
  };
}

/** The npm rows: each phase's time beside its floor (`floor`: a plain copy of the environment) and target. */
function resultRows(
  { cold, warm, fresh, moved }: Record<'cold' | 'warm' | 'fresh' | 'moved', Measured>,
  floor: number,
): string[][] {
  const s = seconds;
  return [
    ['cold: submit → agent (npm ci in setup)', s(cold.submitToAgentMs), '', ''],
    ['  setup stage', s(cold.setupStageMs), '', ''],
    ...warmRows('warm: submit → agent, dependencies ready', cold, warm, `cp -a of the tree: ${floor.toFixed(0)} ms`),
    ['fresh worker: submit → agent', s(fresh.submitToAgentMs), '', ''],
    [
      `  environment from the artifact store (${fresh.state.environment!.source})`,
      `${fresh.state.environment!.readyMs} ms`,
      `cp -a of the tree: ${floor.toFixed(0)} ms`,
      `from the store: ${met(fresh.state.environment!.source === 'store')}`,
    ],
    [
      `new commit on the default branch: submit → agent (${moved.state.environment!.source})`,
      s(moved.submitToAgentMs),
      '',
      '',
    ],
    [
      'iteration 2: checks (npm test, offline)',
      warm.secondCheck ? s(warm.secondCheck.ms) : 'no second iteration',
      '',
      `installs nothing: ${met(!!warm.secondCheck && !warm.secondCheck.installed && !cold.secondCheck?.installed)}`,
    ],
  ];
}

/** What an npm check's log shows when it installed anything, or when anything went through the egress. */
const NPM_INSTALLED = /added \d+ packages|nightshift egress/;

interface Bench {
  stack: Stack;
  dir: string;
  home: string;
  workerEnv: NodeJS.ProcessEnv;
  /** The worker process the runs go to; the npm rows replace it with a fresh one. */
  worker: ChildProcess;
}

/** The npm rows: cold, warm, on a fresh worker, after a new commit on the default branch. */
async function npmRows(bench: Bench): Promise<string[][]> {
  const { stack, dir, home } = bench;
  const registry = registryRule();
  console.log(`npm: registry ${registry} (npm config)`);
  const repo = makeRepoIn(dir, fixtureFiles());
  const run = () => measuredRun(stack, npmSpec(repo, registry), home, 'test', NPM_INSTALLED);
  console.log('cold run (npm ci in the setup stage)…');
  const cold = await run();
  console.log('warm run (the same lock file, the same worker)…');
  const warm = await run();
  bench.worker.kill('SIGTERM');
  await exited(bench.worker);
  console.log('a fresh worker (nothing kept locally)…');
  bench.worker = startWorkerProcess(bench.workerEnv);
  await connected(bench.worker);
  const fresh = await run();
  // The key is the base's whole tree (docs/environments.md): any new commit on the default branch sets up again.
  console.log('a new commit on the default branch (a README added)…');
  writeFileSync(path.join(repo, 'README.md'), 'A README, added.\n');
  for (const args of [
    ['add', 'README.md'],
    ['commit', '--quiet', '-m', 'a README change'],
  ])
    execFileSync('git', args, { cwd: repo });
  const moved = await run();

  const key = cold.state.environment!.key;
  const entry = entryDir(home, key);
  const tree = entry ? path.join(entry, 'workspace', 'node_modules') : undefined;
  const floor = tree ? copyFloorMs(tree, dir) : NaN;
  const packages = tree ? readdirSync(tree).length : 0;
  console.log(
    `npm environment: ${packages} entries in node_modules, ${(cold.state.environment!.bytes / 1024 ** 2).toFixed(1)} MiB, key ${key.slice(0, 12)}`,
  );
  return resultRows({ cold, warm, fresh, moved }, floor);
}

const ROWS = ['npm', 'go'];

/** BENCH_ENV_ROWS: which rows to run (comma-separated; all by default). */
function chosenRows(): string[] {
  const chosen = (process.env.BENCH_ENV_ROWS || ROWS.join(',')).split(',').map((r) => r.trim());
  const unknown = chosen.find((r) => !ROWS.includes(r));
  if (unknown !== undefined) throw new Error(`BENCH_ENV_ROWS: no rows named "${unknown}" (${ROWS.join(', ')})`);
  return chosen;
}

async function main(): Promise<void> {
  const chosen = chosenRows();
  const go = chosen.includes('go') ? goRoot() : undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-bench-env-'));
  const home = path.join(dir, 'home');
  console.log(
    `Nightshift environment bench on ${os.cpus().length} cores, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; rows: ${chosen.join(', ')}${go ? `; Go ${go}` : ''}`,
  );
  const env = await benchEnv(dir, {
    NIGHTSHIFT_HOME: home,
    // The Go rows' toolchain, offered to the API's admission and to the workers alike.
    ...(go ? { NIGHTSHIFT_TOOLCHAINS: `go=${go}` } : {}),
  });
  const stack = await startStack({ devServer: true, worker: false, api: true }, loadConfig(env));
  const workerEnv = { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${env.NIGHTSHIFT_TEMPORAL_PORT}` };
  const bench: Bench = { stack, dir, home, workerEnv, worker: startWorkerProcess(workerEnv) };
  try {
    await connected(bench.worker);
    const rows = [['', 'measured', 'floor', 'target']];
    if (chosen.includes('npm')) rows.push(...(await npmRows(bench)));
    if (go) rows.push(...(await goRows(stack, dir, home, go)));
    console.log('');
    printTable(rows);
  } finally {
    bench.worker.kill('SIGKILL');
    await exited(bench.worker);
    await stack.stop();
    await unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
