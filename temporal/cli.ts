import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The Temporal CLI (its dev server) built here: v1.6+ tags carry a `replace` directive that breaks `go install`, and
 * v1.5.1's own modernc.org/sqlite (v1.34.1) leaves a statement open when a query's context is cancelled, after which
 * every query of the dev server answers "interrupted (9)" until it restarts (cznic/sqlite issue 196, fixed in v1.40.1).
 * So it is built in a module of its own that raises SQLite past the fix (Go takes the highest required): to v1.62.0,
 * as fast as v1.34.1 on the workflow tier where v1.40.1 was 25 % slower.
 */
const TEMPORAL_CLI_BUILD = {
  package: 'github.com/temporalio/cli/cmd/temporal@v1.5.1',
  sqlite: 'modernc.org/sqlite@v1.62.0',
};
/** What is built, for messages (and, written beside the binary, which build it is). */
export const TEMPORAL_CLI_WHAT = `${TEMPORAL_CLI_BUILD.package} with ${TEMPORAL_CLI_BUILD.sqlite}`;
const BUILD_STAMP = `${TEMPORAL_CLI_WHAT}\n`;
/** The server the CLI above embeds: the PostgreSQL cluster (temporal/cluster.ts) runs the same one. */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
const SERVER_MODULE = `go.temporal.io/server@v${TEMPORAL_SERVER_VERSION}`;
/** `server` and `sql` are too generic for a bin dir: kept under the names Temporal's images give them. */
const CLUSTER_TOOLS = [
  {
    module: `go.temporal.io/server/cmd/server@v${TEMPORAL_SERVER_VERSION}`,
    binary: 'server',
    installAs: 'temporal-server',
    what: `the Temporal server ${TEMPORAL_SERVER_VERSION}`,
  },
  {
    module: `go.temporal.io/server/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}`,
    binary: 'sql',
    installAs: 'temporal-sql-tool',
    what: "the Temporal server's SQL tool",
  },
];

/** Per-user tools dir, outside NIGHTSHIFT_HOME so fresh homes (tests) and later clones reuse the build. */
export function toolsDir(): string {
  return process.env.NIGHTSHIFT_TOOLS_DIR || path.join(os.homedir(), '.cache', 'nightshift', 'bin');
}

/**
 * The `temporal` binary: NIGHTSHIFT_TEMPORAL_BIN, then PATH, then the tools dir; null when none. The tools dir's is
 * taken (on PATH too) only when it is the current build (TEMPORAL_CLI_BUILD, written beside it once built).
 */
export function findTemporal(): string | null {
  const explicit = process.env.NIGHTSHIFT_TEMPORAL_BIN;
  if (explicit) return existsSync(explicit) ? explicit : null;
  const local = path.join(toolsDir(), 'temporal');
  const current = () => {
    try {
      return readFileSync(`${local}.build`, 'utf8') === BUILD_STAMP;
    } catch {
      return false;
    }
  };
  const onPath = spawnSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' }).stdout?.trim();
  if (onPath && path.resolve(onPath) !== local) return onPath;
  return existsSync(local) && current() ? local : null;
}

/** Go, to build `tool` with; without it, an error saying how to get either. */
function goToBuild(tool: { what: string; binary: string }): string {
  const go = findGo();
  if (go) return go;
  throw new Error(
    `${tool.what} is not installed and Go is missing to build it: install Go (https://go.dev/dl) or put \`${tool.binary}\` on PATH`,
  );
}

export function findGo(): string | null {
  const onPath = spawnSync('sh', ['-c', 'command -v go'], { encoding: 'utf8' });
  if (onPath.status === 0 && onPath.stdout.trim()) return onPath.stdout.trim();
  return existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : null;
}

/** Find the Temporal CLI or build it (TEMPORAL_CLI_BUILD; about 3 minutes the first time). */
export async function ensureTemporal(progress: (line: string) => void = () => {}): Promise<string> {
  return findTemporal() ?? buildTemporal(progress);
}

async function buildTemporal(progress: (line: string) => void): Promise<string> {
  const go = goToBuild({ what: 'the Temporal CLI', binary: 'temporal' });
  const dir = toolsDir();
  mkdirSync(dir, { recursive: true });
  const binary = path.join(dir, 'temporal');
  const module = mkdtempSync(path.join(os.tmpdir(), 'nightshift-temporal-cli-'));
  const started = Date.now();
  progress(`building the Temporal CLI (${TEMPORAL_CLI_WHAT}) into ${dir}; about 3 minutes the first time`);
  try {
    writeFileSync(path.join(module, 'go.mod'), 'module nightshift.local/temporal-cli\n\ngo 1.24\n');
    const env = { ...process.env, GOFLAGS: process.env.GOFLAGS ?? '' };
    const { package: pkg, sqlite } = TEMPORAL_CLI_BUILD;
    await runGoBuild(go, ['get', '-x', pkg, sqlite], { cwd: module, env }, progress);
    const building = `${binary}.building-${process.pid}`;
    await runGoBuild(go, ['build', '-x', '-o', building, pkg.split('@')[0]], { cwd: module, env }, progress);
    renameSync(building, binary);
    writeFileSync(`${binary}.build`, BUILD_STAMP);
  } finally {
    rmSync(module, { recursive: true, force: true });
  }
  progress(`built the Temporal CLI in ${Math.round((Date.now() - started) / 1000)}s`);
  return binary;
}

export interface ClusterTools {
  server: string;
  sqlTool: string;
  /** The server module's PostgreSQL schema (`temporal/` and `visibility/`, each with `versioned/`). */
  schemaDir: string;
}

/** The Temporal server and its SQL schema tool, built into the tools dir the first time (a few minutes). */
export async function ensureClusterTools(progress: (line: string) => void = () => {}): Promise<ClusterTools> {
  const built: string[] = [];
  for (const tool of CLUSTER_TOOLS) {
    const local = path.join(toolsDir(), tool.installAs);
    built.push(existsSync(local) ? local : await goInstall(tool, progress));
  }
  // The schema ships in the module source `go install` downloaded; the SQL tool reads it at setup and upgrade.
  const go = findGo();
  const modCache = go ? spawnSync(go, ['env', 'GOMODCACHE'], { encoding: 'utf8' }).stdout.trim() : '';
  const schemaDir = path.join(modCache, SERVER_MODULE, 'schema', 'postgresql', 'v12');
  if (!modCache || !existsSync(schemaDir)) {
    throw new Error(
      `the Temporal server's PostgreSQL schema is missing (${schemaDir}): run \`go mod download ${SERVER_MODULE}\``,
    );
  }
  return { server: built[0], sqlTool: built[1], schemaDir };
}

/**
 * Build a Go program with `go install` into the tools dir (`toolsDir()`). `progress` gets a line every few seconds
 * so nobody stares at a silent terminal.
 */
export async function goInstall(
  tool: { module: string; binary: string; what: string; installAs?: string },
  progress: (line: string) => void = () => {},
): Promise<string> {
  const go = goToBuild(tool);
  const dir = toolsDir();
  progress(`building ${tool.what} (${tool.module}) into ${dir}; this can take a few minutes the first time`);
  const started = Date.now();
  await runGoBuild(
    go,
    ['install', '-x', tool.module],
    { env: { ...process.env, GOBIN: dir, GOFLAGS: process.env.GOFLAGS ?? '' } },
    progress,
  );
  const built = path.join(dir, tool.binary);
  if (!existsSync(built)) throw new Error(`go install finished but ${built} is missing`);
  progress(`built ${tool.what} in ${Math.round((Date.now() - started) / 1000)}s`);
  if (!tool.installAs) return built;
  const installed = path.join(dir, tool.installAs);
  renameSync(built, installed);
  return installed;
}

/**
 * Run `go install -x …` or `go build -x …` with a progress line every 10 s (downloads and packages compiled, which
 * `-x` prints); a failure quotes the last lines of Go's output that are not its command trace.
 */
export async function runGoBuild(
  go: string,
  args: string[],
  opts: { cwd?: string; env: NodeJS.ProcessEnv },
  progress: (line: string) => void,
): Promise<void> {
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let downloads = 0;
    let compiled = 0;
    let tail = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-4000);
      downloads += (chunk.match(/^# get \S+: 200 OK/gm) ?? []).length;
      compiled += (chunk.match(/\/compile -o /g) ?? []).length;
    });
    const timer = setInterval(() => {
      progress(
        `  … still building (${Math.round((Date.now() - started) / 1000)}s: ${downloads} files downloaded, ${compiled} packages compiled)`,
      );
    }, 10_000);
    child.on('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearInterval(timer);
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `go ${args.filter((a) => a !== '-x').join(' ')} failed (exit ${code}):\n${tail
              .split('\n')
              .filter((l) => !l.startsWith('#') && !l.includes('compile -o'))
              .slice(-15)
              .join('\n')}`,
          ),
        );
    });
  });
}
