// bench:env's Go rows: testbed/goModule.ts (go-cmp pinned by its go.sum) on a stack that offers the host's Go
// toolchain (NIGHTSHIFT_TOOLCHAINS). A cold run of the base (the setup's `go mod download` through the egress, then
// `go test -count=1 -run NONE ./...`, which compiles the standard library and go-cmp into the environment's build
// cache) and a warm one (the same base: the environment cache's entry), each beside the same work done on the host
// with the same Go (the floor), and the second iteration's checks beside the same checks on the host: on the caches
// the setup left (what a check's sandbox starts from: nothing a check builds is kept for the next iteration, and the
// setup's `go test` does not warm `go vet`'s analysis of the standard library) and with every cache warm.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Stack } from '../cli/up';
import { GO_MODULE_FILES, GO_MODULE_FIX } from '../testbed/goModule';
import { makeRepoIn } from '../testbed/makeRepo';
import { copyFloorMs, entryDir, measuredRun, met, seconds, warmRows, type Measured } from './envRuns';
import { elapsedMs } from './stats';

const SETUP = ['go mod download', 'go test -count=1 -run NONE ./...'];
const CHECK = 'go vet ./... && go test -json ./...';
/** What a check's log shows when Go fetched a module, or when anything went through the egress. */
const FETCHED = /go: downloading|nightshift egress/;

/** The toolchain the stack offers: the Go on PATH, at its real root. */
export function goRoot(): string {
  try {
    return execFileSync('go', ['env', 'GOROOT'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('go is not on PATH: the Go rows need it (add /usr/local/go/bin, or BENCH_ENV_ROWS=npm)');
  }
}

/**
 * The agent leaves the bug in its first iteration (a note only, so the checks fail once) and writes GO_MODULE_FIX in
 * its second, so the checks run twice, the second time with everything compiled but the fixed package.
 */
const AGENT = `if [ -f notes/first ]; then printf %s ${Buffer.from(GO_MODULE_FIX).toString('base64')} | base64 -d > mathx.go; else mkdir -p notes && touch notes/first; fi`;

function goSpec(repo: string): object {
  return {
    title: 'Environment bench (Go)',
    task: 'Make Clamp return hi above the range.',
    repo,
    agent: { kind: 'command', command: ['sh', '-c', AGENT] },
    sandbox: { toolchains: ['go'] },
    setup: { run: SETUP, network: ['proxy.golang.org:443'] },
    checks: [{ name: 'go', run: CHECK }],
    limits: { iterations: 3 },
    approval: { required: false },
  };
}

/** `sh -c command` in `cwd` on the host, timed; throws with its output's end when it fails and must not. */
function timed(command: string, cwd: string, env: NodeJS.ProcessEnv, mayFail = false): number {
  const t = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', command], { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 ** 2 });
  const ms = elapsedMs(t);
  if (r.status !== 0 && !mayFail) throw new Error(`host floor: ${command} exited ${r.status}: ${r.stderr.slice(-300)}`);
  return ms;
}

interface Floors {
  /** The setup's commands with empty module and build caches (the modules straight from proxy.golang.org). */
  setupMs: number;
  /** The check on the caches the setup left (the buggy module; its test fails): what each check in the run has. */
  checkAfterSetupMs: number;
  /** The check again with the fix written: every cache warm but the fixed package's (vet's too). */
  checkWarmMs: number;
}

/** The floors: the same commands with the same Go on the host, no sandbox, no egress proxy, no workflow. */
function hostFloors(root: string, scratch: string): Floors {
  const dir = path.join(scratch, 'go-floor');
  const module = path.join(dir, 'module');
  mkdirSync(module, { recursive: true });
  for (const [name, text] of Object.entries(GO_MODULE_FILES)) writeFileSync(path.join(module, name), text);
  const env: NodeJS.ProcessEnv = {
    PATH: `${path.join(root, 'bin')}:/usr/bin:/bin`,
    HOME: dir,
    GOENV: 'off',
    GOPATH: path.join(dir, 'go'),
    GOMODCACHE: path.join(dir, 'go', 'pkg', 'mod'),
    GOCACHE: path.join(dir, 'go-build'),
    GOFLAGS: '-modcacherw',
    TMPDIR: dir,
  };
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy', 'SSL_CERT_FILE'])
    if (process.env[name]) env[name] = process.env[name];
  try {
    const setupMs = SETUP.reduce((sum, command) => sum + timed(command, module, env), 0);
    const checkAfterSetupMs = timed(CHECK, module, env, true);
    writeFileSync(path.join(module, 'mathx.go'), GO_MODULE_FIX);
    return { setupMs, checkAfterSetupMs, checkWarmMs: timed(CHECK, module, env) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function rows(cold: Measured, warm: Measured, floor: Floors & { copyMs: number }) {
  return [
    [
      'go cold: submit → agent (go mod download, stdlib build)',
      seconds(cold.submitToAgentMs),
      `host, empty caches: ${seconds(floor.setupMs)}`,
      '',
    ],
    ['  setup stage', seconds(cold.setupStageMs), '', ''],
    ...warmRows(
      'go warm: submit → agent, modules and build cache ready',
      cold,
      warm,
      `cp -a of the entry: ${floor.copyMs.toFixed(0)} ms`,
      `cache hit: ${met(warm.state.environment!.source !== 'built')}`,
    ),
    [
      'iteration 2: checks (go vet, go test -json, offline)',
      warm.secondCheck ? seconds(warm.secondCheck.ms) : 'no second iteration',
      `host: ${seconds(floor.checkWarmMs)} all warm, ${seconds(floor.checkAfterSetupMs)} on the setup's caches`,
      `fetches nothing: ${met(!!warm.secondCheck && !warm.secondCheck.installed && !cold.secondCheck?.installed)}`,
    ],
  ];
}

/** The last minute's load average: the Go rows take minutes, and other work on the machine moves them. */
const load = () => os.loadavg()[0].toFixed(2);

/** The Go rows of the table, run on the stack's current worker; `root` is the Go the stack offers. */
export async function goRows(stack: Stack, dir: string, home: string, root: string): Promise<string[][]> {
  const repo = makeRepoIn(dir, GO_MODULE_FILES);
  const spec = goSpec(repo);
  console.log(`go: cold run (go mod download and the build cache in the setup stage), load ${load()}…`);
  const cold = await measuredRun(stack, spec, home, 'go', FETCHED);
  console.log(`go: warm run (the same base, the same worker), load ${load()}…`);
  const warm = await measuredRun(stack, spec, home, 'go', FETCHED);
  console.log(`go: the same commands on the host, load ${load()}…`);
  const floor = hostFloors(root, dir);
  const entry = entryDir(home, cold.state.environment!.key);
  const copyMs = entry ? copyFloorMs(entry, dir) : NaN;
  const env = cold.state.environment!;
  console.log(
    `go environment: ${(env.bytes / 1024 ** 2).toFixed(1)} MiB (workspace${env.home ? ' and home: module and build caches' : ''}), key ${env.key.slice(0, 12)}`,
  );
  return rows(cold, warm, { ...floor, copyMs });
}
