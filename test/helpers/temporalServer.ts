import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync } from 'node:fs';
import * as path from 'node:path';
import { startCluster, type TemporalCluster } from '../../temporal/cluster';
import { startDevServer } from '../../temporal/devServer';
import { freePort } from './ports';
import { tempDir } from './stack';
import { exited } from './workerProcess';

/** The kinds of Temporal server the suite runs on: the dev server (SQLite), or the server on PostgreSQL. */
export type TemporalKind = 'dev' | 'postgres';

/**
 * The suite's kind: `postgres` under `npm run test:cluster` (NIGHTSHIFT_TEST_CLUSTER=postgres), the dev server
 * otherwise (globalSetup refuses any other value).
 */
export function suiteTemporalKind(): TemporalKind {
  return process.env.NIGHTSHIFT_TEST_CLUSTER === 'postgres' ? 'postgres' : 'dev';
}

/** A Temporal server of a test's own, on a database of its own, that the test may kill and bring back. */
export interface KillableTemporal {
  kind: TemporalKind;
  /** The same across restarts. */
  address: string;
  /** The running server process (a new one after each restart). */
  process: ChildProcess;
  /**
   * A query's rows (`|`-separated) from the server's own database: PostgreSQL's `temporal` or `temporal_visibility`,
   * or the dev server's SQLite file, which holds both (read only while that server is down). Tables such as
   * `executions` have the same shape in both.
   */
  sql: TemporalCluster['sql'];
  /**
   * SIGKILL the server process, as when its host dies, and wait for it; PostgreSQL stays up. Resolves to the signal.
   */
  kill(): Promise<NodeJS.Signals | null>;
  /** Start the server again on the same data and address (after kill or stop). */
  restart(): Promise<void>;
  /** SIGTERM the server (and stop PostgreSQL). */
  stop(): Promise<void>;
}

/** A fresh server of `kind` (default: the suite's) in its own data dir, on ports of its own. */
export async function startKillableTemporal(kind: TemporalKind = suiteTemporalKind()): Promise<KillableTemporal> {
  const dataDir = tempDir(`temporal-${kind}`);
  return kind === 'postgres' ? startKillableCluster(dataDir) : startKillableDevServer(dataDir);
}

async function startKillableDevServer(dataDir: string): Promise<KillableTemporal> {
  const opts = { dataDir, port: await freePort(), uiPort: await freePort(), headless: true };
  let server = await startDevServer(opts);
  const database = path.join(dataDir, 'temporal.db');
  return {
    kind: 'dev',
    address: server.address,
    get process() {
      return server.process;
    },
    sql(_database, query) {
      // Read only while the server is down: a busy dev server holds its (rollback-journal) database locked for as
      // long as runs are in flight, and a reader waiting on it blocks the test process. A hot journal left by a
      // SIGKILL is rolled back here, as the server itself would on its next start.
      if (server.process.exitCode === null && server.process.signalCode === null)
        throw new Error('the dev server is running: read its database after kill() or stop()');
      const sqlite = spawnSync('sqlite3', ['-cmd', '.timeout 5000', database, query], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      if (sqlite.error) throw new Error(`sqlite3 (apt-get install sqlite3): ${sqlite.error.message}`);
      if (sqlite.status !== 0) throw new Error(`sqlite3 on ${database}: ${sqlite.stderr.trim()}`);
      return sqlite.stdout;
    },
    kill: () => killProcess(server.process),
    async restart() {
      server = await startDevServer(opts);
    },
    stop: () => server.stop(),
  };
}

async function startKillableCluster(dataDir: string): Promise<KillableTemporal> {
  // Under root, PostgreSQL runs as the postgres user, which must get through to its data.
  chmodSync(dataDir, 0o711);
  let cluster = await startCluster({ dataDir, port: await freePort() });
  const address = cluster.address;
  return {
    kind: 'postgres',
    address,
    get process() {
      return cluster.server;
    },
    sql: (database, query) => cluster.sql(database, query),
    kill: () => killProcess(cluster.server),
    async restart() {
      cluster = await startCluster({ dataDir });
      if (cluster.address !== address) throw new Error(`the cluster came back on ${cluster.address}, not ${address}`);
    },
    stop: () => cluster.stop(),
  };
}

async function killProcess(child: ChildProcess): Promise<NodeJS.Signals | null> {
  child.kill('SIGKILL');
  await exited(child);
  return child.signalCode;
}
