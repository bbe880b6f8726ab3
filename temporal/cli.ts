import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** v1.6+ tags carry a `replace` directive that breaks `go install`; see README. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';
/** The server the CLI above embeds: the PostgreSQL cluster (temporal/cluster.ts) runs the same one. */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
const SERVER_MODULE = `go.temporal.io/server@v${TEMPORAL_SERVER_VERSION}`;

/** A binary `go install` builds (named after its package's last element) and the name it is kept under. */
interface GoTool {
  pkg: string;
  builds: string;
  installAs: string;
}

const CLUSTER_TOOLS: GoTool[] = [
  { pkg: `go.temporal.io/server/cmd/server@v${TEMPORAL_SERVER_VERSION}`, builds: 'server', installAs: 'temporal-server' },
  { pkg: `go.temporal.io/server/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}`, builds: 'sql', installAs: 'temporal-sql-tool' },
];

/** Per-user tools dir, outside NIGHTSHIFT_HOME so fresh homes (tests) and later clones reuse the build. */
export function toolsDir(): string {
  return process.env.NIGHTSHIFT_TOOLS_DIR || path.join(os.homedir(), '.cache', 'nightshift', 'bin');
}

/** The `temporal` binary: NIGHTSHIFT_TEMPORAL_BIN, then PATH, then the tools dir; null when none. */
export function findTemporal(): string | null {
  const explicit = process.env.NIGHTSHIFT_TEMPORAL_BIN;
  if (explicit) return existsSync(explicit) ? explicit : null;
  const onPath = spawnSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' });
  if (onPath.status === 0 && onPath.stdout.trim()) return onPath.stdout.trim();
  const local = path.join(toolsDir(), 'temporal');
  return existsSync(local) ? local : null;
}

export function findGo(): string | null {
  const onPath = spawnSync('sh', ['-c', 'command -v go'], { encoding: 'utf8' });
  if (onPath.status === 0 && onPath.stdout.trim()) return onPath.stdout.trim();
  return existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : null;
}

/**
 * Find the Temporal CLI or build it with `go install` (minutes the first time). `progress` gets a line every
 * few seconds so nobody stares at a silent terminal.
 */
export async function ensureTemporal(progress: (line: string) => void = () => {}): Promise<string> {
  const found = findTemporal();
  if (found) return found;
  await goInstall('the Temporal CLI', [{ pkg: TEMPORAL_CLI_MODULE, builds: 'temporal', installAs: 'temporal' }], progress);
  return path.join(toolsDir(), 'temporal');
}

export interface ClusterTools {
  server: string;
  sqlTool: string;
  /** The server module's PostgreSQL schema (`temporal/` and `visibility/`, each with `versioned/`). */
  schemaDir: string;
}

/** The Temporal server and its SQL schema tool, built into the tools dir the first time (several minutes). */
export async function ensureClusterTools(progress: (line: string) => void = () => {}): Promise<ClusterTools> {
  const dir = toolsDir();
  if (CLUSTER_TOOLS.some((t) => !existsSync(path.join(dir, t.installAs)))) {
    await goInstall(`the Temporal server ${TEMPORAL_SERVER_VERSION} and its SQL tool`, CLUSTER_TOOLS, progress);
  }
  // The schema ships in the module source `go install` downloaded; the tools read it at setup and upgrade.
  const go = findGo();
  const modCache = go ? spawnSync(go, ['env', 'GOMODCACHE'], { encoding: 'utf8' }).stdout.trim() : '';
  const schemaDir = path.join(modCache, SERVER_MODULE, 'schema', 'postgresql', 'v12');
  if (!modCache || !existsSync(schemaDir)) {
    throw new Error(`the Temporal server's PostgreSQL schema is missing (${schemaDir}): run \`go mod download ${SERVER_MODULE}\``);
  }
  return { server: path.join(dir, 'temporal-server'), sqlTool: path.join(dir, 'temporal-sql-tool'), schemaDir };
}

/** `go install` the tools (one module, one version) into the tools dir, under their own names. */
async function goInstall(what: string, tools: GoTool[], progress: (line: string) => void): Promise<void> {
  const go = findGo();
  if (!go) throw new Error(`${what} is not installed and Go is missing to build it: install Go (https://go.dev/dl)`);
  const dir = toolsDir();
  mkdirSync(dir, { recursive: true });
  // Built into a staging dir, then renamed: `server` and `sql` are too generic to sit in a bin dir.
  const staging = mkdtempSync(path.join(dir, '.build-'));
  const pkgs = tools.map((t) => t.pkg).join(' ');
  progress(`building ${what} (${pkgs}) into ${dir}; this takes a few minutes the first time`);
  const started = Date.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['install', '-x', ...tools.map((t) => t.pkg)], {
        env: { ...process.env, GOBIN: staging, GOFLAGS: process.env.GOFLAGS ?? '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      // `go install -x` prints each download (# get …: 200 OK) and each compiler run: count them for the progress line.
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
        progress(`  … still building (${Math.round((Date.now() - started) / 1000)}s: ${downloads} files downloaded, ${compiled} packages compiled)`);
      }, 10_000);
      child.on('error', (err) => {
        clearInterval(timer);
        reject(err);
      });
      child.on('close', (code) => {
        clearInterval(timer);
        if (code === 0) resolve();
        else reject(new Error(`go install ${pkgs} failed (exit ${code}):\n${tail.split('\n').filter((l) => !l.startsWith('#') && !l.includes('compile -o')).slice(-15).join('\n')}`));
      });
    });
    for (const tool of tools) {
      const built = path.join(staging, tool.builds);
      if (!existsSync(built)) throw new Error(`go install finished but ${built} is missing`);
      renameSync(built, path.join(dir, tool.installAs));
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  progress(`built ${what} in ${Math.round((Date.now() - started) / 1000)}s`);
}
