// `npm run bench:env`: what the setup stage and the environment cache save, with real parts: a Temporal dev server,
// `nightshift worker` processes, bwrap, overlays, and a real `npm ci` of a fixture with a real lock file (mocha and
// friends, 110 packages) through the egress proxy, from the registry npm's own configuration names. Each number
// beside its floor (a bare copy of the same tree) and its target. Prints a table; asserts nothing.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startStack, type Stack } from '../cli/up';
import { loadConfig } from '../config';
import { unmountUnder } from '../sandbox/overlay';
import { freePort } from '../temporal/ports';
import { makeRepoIn } from '../testbed/makeRepo';
import { connected, exited, startWorkerProcess } from '../testbed/workerProcess';
import type { RunState } from '../contracts/run';
import { elapsedMs, printTable, runBench } from './stats';

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

function runSpec(repo: string, registry: string): object {
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

async function submit(stack: Stack, body: object): Promise<string> {
  const res = await fetch(`${stack.apiUrl}/v1/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 202) throw new Error(`submit failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

async function finished(stack: Stack, id: string): Promise<RunState> {
  try {
    return await stack.client.workflow.getHandle(id).result();
  } catch (err) {
    const e = err as Error & { cause?: Error & { details?: unknown[] } };
    throw new Error(`run ${id} failed: ${(e.cause?.message ?? e.message).split('\n')[0]}`);
  }
}

interface Measured {
  state: RunState;
  submitToAgentMs: number;
  setupStageMs: number;
  /** The second iteration's check: how long, and whether its log shows anything installed or any connection. */
  secondCheck?: { ms: number; installed: boolean };
}

async function measuredRun(stack: Stack, repo: string, registry: string, home: string): Promise<Measured> {
  const state = await finished(stack, await submit(stack, runSpec(repo, registry)));
  const agent = state.stages.find((s) => s.stage === 'agent')!;
  const setup = state.stages.find((s) => s.stage === 'setup')!;
  const check = state.checks.find((c) => c.name === 'test');
  const log = check ? readFileSync(path.join(home, 'artifacts', check.logId.slice(0, 2), check.logId), 'utf8') : '';
  return {
    state,
    submitToAgentMs: Date.parse(agent.startedAt) - Date.parse(state.createdAt),
    setupStageMs: setup.durationMs ?? 0,
    secondCheck:
      state.iteration >= 2 && check
        ? { ms: check.durationMs, installed: /added \d+ packages|nightshift egress/.test(log) }
        : undefined,
  };
}

/** A bare copy of a tree (cp -a), the floor under any restore of it. */
function copyFloorMs(tree: string, scratch: string): number {
  const target = path.join(scratch, `copy-${Date.now()}`);
  const t = process.hrtime.bigint();
  execFileSync('cp', ['-a', tree, target]);
  const ms = elapsedMs(t);
  rmSync(target, { recursive: true, force: true });
  return ms;
}

type MeasuredRun = Awaited<ReturnType<typeof measuredRun>>;

/** The bench's table: each phase's time beside its floor (`floor`: a plain copy of the environment) and target. */
function resultRows(
  { cold, warm, fresh, moved }: Record<'cold' | 'warm' | 'fresh' | 'moved', MeasuredRun>,
  floor: number,
): string[][] {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
  return [
    ['', 'measured', 'floor', 'target'],
    ['cold: submit → agent (npm ci in setup)', s(cold.submitToAgentMs), '', ''],
    ['  setup stage', s(cold.setupStageMs), '', ''],
    [
      'warm: submit → agent, dependencies ready',
      s(warm.submitToAgentMs),
      '',
      `≤ 2 s: ${met(warm.submitToAgentMs <= 2000)}`,
    ],
    [
      '  environment in the sandbox (overlay)',
      `${warm.state.environment!.readyMs} ms`,
      `cp -a of the tree: ${floor.toFixed(0)} ms`,
      '',
    ],
    [
      '  cold / warm',
      `${(cold.submitToAgentMs / warm.submitToAgentMs).toFixed(1)}×`,
      '',
      `≥ 10×: ${met(cold.submitToAgentMs / warm.submitToAgentMs >= 10)}`,
    ],
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

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-bench-env-'));
  const home = path.join(dir, 'home');
  const registry = registryRule();
  console.log(
    `Nightshift environment bench on ${os.cpus().length} cores, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; registry ${registry} (npm config)`,
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NIGHTSHIFT_HOME: home,
    NIGHTSHIFT_REPOS_DIR: dir,
    NIGHTSHIFT_PORT: String(await freePort()),
    NIGHTSHIFT_TEMPORAL_PORT: String(await freePort()),
    NIGHTSHIFT_TEMPORAL_UI_PORT: String(await freePort()),
  };
  delete env.TEMPORAL_ADDRESS;
  const stack = await startStack({ devServer: true, worker: false, api: true }, loadConfig(env));
  const workerEnv = { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${env.NIGHTSHIFT_TEMPORAL_PORT}` };
  const repo = makeRepoIn(dir, fixtureFiles());
  let worker = startWorkerProcess(workerEnv);
  try {
    await connected(worker);
    console.log('cold run (npm ci in the setup stage)…');
    const cold = await measuredRun(stack, repo, registry, home);
    console.log('warm run (the same lock file, the same worker)…');
    const warm = await measuredRun(stack, repo, registry, home);
    worker.kill('SIGTERM');
    await exited(worker);
    console.log('a fresh worker (nothing kept locally)…');
    worker = startWorkerProcess(workerEnv);
    await connected(worker);
    const fresh = await measuredRun(stack, repo, registry, home);
    // The key is the base's whole tree (docs/environments.md): any new commit on the default branch sets up again.
    console.log('a new commit on the default branch (a README added)…');
    writeFileSync(path.join(repo, 'README.md'), 'A README, added.\n');
    for (const args of [
      ['add', 'README.md'],
      ['commit', '--quiet', '-m', 'a README change'],
    ])
      execFileSync('git', args, { cwd: repo });
    const moved = await measuredRun(stack, repo, registry, home);

    const key = cold.state.environment!.key;
    const entry = readdirSync(path.join(home, 'work'), { recursive: true, encoding: 'utf8' }).find((p) =>
      p.endsWith(path.join(key, 'workspace', 'node_modules')),
    );
    const tree = entry ? path.join(home, 'work', entry) : undefined;
    const floor = tree ? copyFloorMs(tree, dir) : NaN;
    const packages = tree ? readdirSync(tree).length : 0;
    const rows = resultRows({ cold, warm, fresh, moved }, floor);
    console.log(
      `\nenvironment: ${packages} entries in node_modules, ${(cold.state.environment!.bytes / 1024 ** 2).toFixed(1)} MiB, key ${key.slice(0, 12)}`,
    );
    printTable(rows);
  } finally {
    worker.kill('SIGKILL');
    await exited(worker);
    await stack.stop();
    await unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
