import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as path from 'node:path';
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { stringify } from 'yaml';
import { z } from 'zod';
import { ensureClusterTools, type ClusterTools } from './cli';
import { ensureSearchAttributes, MATCHING_CONFIG, stopProcess, waitUntilServing } from './devServer';
import { freeLowPort, freePort } from './ports';

/** Debian 12's PostgreSQL; docker-compose.temporal.yml runs the same major (test/compose.test.ts). */
export const POSTGRES_MAJOR = 15;
/** Fixed for a database's life: the compose file sets the same. */
export const HISTORY_SHARDS = 4;
const DB_USER = 'temporal';
const DATABASES = { temporal: 'temporal', temporal_visibility: 'visibility' } as const;
type Database = keyof typeof DATABASES;
const GRPC_NOT_FOUND = 5;

/** What a cluster's data dir remembers between starts: its ports and the database password. */
const clusterStateSchema = z.object({
  postgresPort: z.number().int(),
  password: z.string(),
  frontendPort: z.number().int(),
  /** frontend HTTP, membership and the other services' gRPC ports, chosen at the first start. */
  ports: z.record(z.string(), z.number().int()),
  schemaReady: z.boolean(),
});
type ClusterState = z.infer<typeof clusterStateSchema>;

export interface ClusterOptions {
  /** PostgreSQL's data, the server's config and both logs; a later start on the same dir finds everything again. */
  dataDir: string;
  /** The frontend's port; default 7233 at the first start, then the one it had. */
  port?: number;
  progress?: (line: string) => void;
}

export interface TemporalCluster {
  address: string;
  dataDir: string;
  /** The Temporal server process (PostgreSQL runs on under pg_ctl). */
  server: ChildProcess;
  /** A query's rows (psql unaligned, `|`-separated) from one of the cluster's databases. */
  sql(database: Database, query: string): string;
  /** SIGTERM the server and wait for it, then stop PostgreSQL. */
  stop(): Promise<void>;
}

/**
 * A Temporal server (frontend, history, matching, worker in one process) on PostgreSQL, both on this machine: the
 * topology of docker-compose.temporal.yml without Docker. PostgreSQL refuses to run as root, so under root it runs
 * as the `postgres` user (runuser), and `dataDir` must be reachable by that user.
 */
export async function startCluster(opts: ClusterOptions): Promise<TemporalCluster> {
  const progress = opts.progress ?? (() => {});
  const tools = await ensureClusterTools(progress);
  const dataDir = path.resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const state = await loadOrCreateState(dataDir, opts.port);
  const postgres = new Postgres(dataDir, state);
  postgres.start();
  if (!state.schemaReady) {
    progress('creating the Temporal schema in PostgreSQL…');
    setUpSchema(tools, state);
    saveState(dataDir, { ...state, schemaReady: true });
  }
  writeServerConfig(dataDir, state);
  const logPath = path.join(dataDir, 'temporal.log');
  const log = openSync(logPath, 'a');
  const server = spawn(
    tools.server,
    ['--root', dataDir, '--config', 'server', '--env', 'temporal', '--allow-no-auth', 'start'],
    {
      stdio: ['ignore', log, log],
    },
  );
  const address = `127.0.0.1:${state.frontendPort}`;
  try {
    await waitUntilServing(server, address, 'the Temporal server', logPath, registerNamespace, 120_000);
  } catch (err) {
    postgres.stop();
    throw err;
  }
  return {
    address,
    dataDir,
    server,
    sql: (database, query) => postgres.query(database, query),
    async stop() {
      await stopProcess(server, 30_000);
      postgres.stop();
    },
  };
}

async function loadOrCreateState(dataDir: string, port: number | undefined): Promise<ClusterState> {
  const file = path.join(dataDir, 'cluster.json');
  if (existsSync(file)) {
    const saved = clusterStateSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    if (port === undefined || port === saved.frontendPort) return saved;
    const moved = { ...saved, frontendPort: port };
    saveState(dataDir, moved);
    return moved;
  }
  const ports: Record<string, number> = {};
  for (const name of [
    'frontendHttp',
    'frontendMembership',
    'history',
    'historyMembership',
    'matching',
    'matchingMembership',
    'worker',
    'workerMembership',
  ]) {
    ports[name] = await freeLowPort();
  }
  const state: ClusterState = {
    postgresPort: await freePort(),
    password: randomBytes(18).toString('base64url'),
    frontendPort: port ?? 7233,
    ports,
    schemaReady: false,
  };
  saveState(dataDir, state);
  return state;
}

function saveState(dataDir: string, state: ClusterState): void {
  writeFileSync(path.join(dataDir, 'cluster.json'), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
}

/** PostgreSQL in `dataDir/postgres`, listening on 127.0.0.1 only, password auth over TCP. */
class Postgres {
  private readonly root: string;
  private readonly data: string;
  private readonly bin = `/usr/lib/postgresql/${POSTGRES_MAJOR}/bin`;
  /** The postgres user's ids when this process is root (PostgreSQL will not run as root). */
  private readonly owner?: { uid: number; gid: number; name: string };

  constructor(
    dataDir: string,
    private readonly state: ClusterState,
  ) {
    this.root = path.join(dataDir, 'postgres');
    this.data = path.join(this.root, 'data');
    if (process.getuid?.() === 0) {
      const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
      this.owner = { uid: id('-u'), gid: id('-g'), name: 'postgres' };
      if (!Number.isInteger(this.owner.uid) || this.owner.uid === 0)
        throw new Error('running as root needs the postgres user to run PostgreSQL: apt-get install postgresql');
    }
  }

  start(): void {
    if (!existsSync(path.join(this.bin, 'pg_ctl')))
      throw new Error(`PostgreSQL ${POSTGRES_MAJOR} is not installed (${this.bin}): apt-get install postgresql`);
    if (!existsSync(path.join(this.data, 'PG_VERSION'))) this.init();
    // A server already up (the Temporal server alone was killed) is fine; pg_ctl status exits 0 then.
    if (this.run('pg_ctl', ['-D', this.data, 'status']).status === 0) return;
    const started = this.run('pg_ctl', [
      '-D',
      this.data,
      '-l',
      path.join(this.root, 'postgres.log'),
      '-w',
      '-t',
      '60',
      'start',
    ]);
    if (started.status !== 0)
      throw new Error(
        `PostgreSQL did not start: ${lastLine(started.stderr || started.stdout)}; see ${path.join(this.root, 'postgres.log')}`,
      );
  }

  stop(): void {
    this.run('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', 'stop']);
  }

  query(database: Database, query: string): string {
    const psql = spawnSync(
      path.join(this.bin, 'psql'),
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(this.state.postgresPort),
        '-U',
        DB_USER,
        '-d',
        database,
        '-At',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        query,
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, PGPASSWORD: this.state.password },
      },
    );
    if (psql.status !== 0) throw new Error(`psql on ${database}: ${lastLine(psql.stderr)}`);
    return psql.stdout;
  }

  private init(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const pwfile = path.join(this.root, 'pwfile');
    writeFileSync(pwfile, this.state.password + '\n', { mode: 0o600 });
    if (this.owner) {
      chownSync(this.root, this.owner.uid, this.owner.gid);
      chownSync(pwfile, this.owner.uid, this.owner.gid);
      this.assertReachable();
    }
    const init = this.run('initdb', [
      '-D',
      this.data,
      '-U',
      DB_USER,
      `--pwfile=${pwfile}`,
      '--auth-local=peer',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--no-locale',
    ]);
    rmSync(pwfile, { force: true });
    if (init.status !== 0) throw new Error(`initdb failed: ${lastLine(init.stderr || init.stdout)}`);
    const socketDir = path.join(this.root, 'run');
    mkdirSync(socketDir);
    if (this.owner) chownSync(socketDir, this.owner.uid, this.owner.gid);
    // Our own port and socket dir, so it never meets a system PostgreSQL; no address but loopback.
    appendFileSync(
      path.join(this.data, 'postgresql.conf'),
      `\n# nightshift cluster\nport = ${this.state.postgresPort}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${socketDir}'\n`,
    );
  }

  /** Every directory above the data dir must let the postgres user through: name the first that does not. */
  private assertReachable(): void {
    const can = (test: string, dir: string) =>
      spawnSync('runuser', ['-u', this.owner!.name, '--', 'test', test, dir]).status === 0;
    if (can('-w', this.root)) return;
    const ancestors: string[] = [];
    for (let dir = path.dirname(this.root); ; dir = path.dirname(dir)) {
      ancestors.unshift(dir);
      if (dir === path.dirname(dir)) break;
    }
    const blocked = ancestors.find((dir) => !can('-x', dir)) ?? this.root;
    throw new Error(
      `PostgreSQL runs as the postgres user, which cannot reach ${this.root} (${blocked} is closed to it): choose a data dir it can reach`,
    );
  }

  private run(tool: string, args: string[]) {
    const bin = path.join(this.bin, tool);
    const [cmd, argv] = this.owner ? ['runuser', ['-u', this.owner.name, '--', bin, ...args]] : [bin, args];
    return spawnSync(cmd, argv, { encoding: 'utf8', cwd: '/' });
  }
}

/** `create-database`, `setup-schema -v 0.0` and `update-schema` to the module's latest, for both databases. */
function setUpSchema(tools: ClusterTools, state: ClusterState): void {
  for (const [database, schema] of Object.entries(DATABASES)) {
    const base = [
      '--plugin',
      'postgres12',
      '--endpoint',
      '127.0.0.1',
      '--port',
      String(state.postgresPort),
      '--user',
      DB_USER,
      '--password',
      state.password,
      '--database',
      database,
    ];
    for (const step of [
      ['create-database'],
      ['setup-schema', '-v', '0.0'],
      ['update-schema', '-d', path.join(tools.schemaDir, schema, 'versioned')],
    ]) {
      const run = spawnSync(tools.sqlTool, [...base, ...step], { encoding: 'utf8' });
      if (run.status !== 0)
        throw new Error(`temporal-sql-tool ${step[0]} on ${database} failed: ${lastLine(run.stderr || run.stdout)}`);
    }
  }
}

/** The server's static config (development-postgres12.yaml, ports of our own) and its dynamic config. */
function writeServerConfig(dataDir: string, state: ClusterState): void {
  const dir = path.join(dataDir, 'server');
  mkdirSync(dir, { recursive: true });
  const sql = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `127.0.0.1:${state.postgresPort}`,
      connectProtocol: 'tcp',
      user: DB_USER,
      password: state.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const service = (grpcPort: number, membershipPort: number, httpPort?: number) => ({
    rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...(httpPort ? { httpPort } : {}) },
  });
  const { ports } = state;
  const config = {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: HISTORY_SHARDS,
      datastores: { 'postgres-default': sql('temporal', 20), 'postgres-visibility': sql('temporal_visibility', 4) },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: {
      frontend: service(state.frontendPort, ports.frontendMembership, ports.frontendHttp),
      history: service(ports.history, ports.historyMembership),
      matching: service(ports.matching, ports.matchingMembership),
      worker: service(ports.worker, ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: `127.0.0.1:${state.frontendPort}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    publicClient: { hostPort: `127.0.0.1:${state.frontendPort}` },
    dynamicConfigClient: { filepath: path.join(dir, 'dynamicconfig.yaml'), pollInterval: '10s' },
  };
  writeFileSync(path.join(dir, 'temporal.yaml'), stringify(config), { mode: 0o600 });
  // As the dev server does: search attributes usable as soon as they are added (a fresh cluster adds them at start).
  const dynamic = {
    'system.forceSearchAttributesCacheRefreshOnRead': [{ value: true }],
    'frontend.persistenceMaxQPS': [{ value: 10000 }],
    'history.persistenceMaxQPS': [{ value: 45000 }],
    ...Object.fromEntries(Object.entries(MATCHING_CONFIG).map(([key, value]) => [key, [{ value }]])),
  };
  writeFileSync(path.join(dir, 'dynamicconfig.yaml'), stringify(dynamic));
}

/** The `default` namespace (retention 24 h, as the compose file's auto-setup) and Nightshift's search attributes. */
async function registerNamespace(connection: Connection): Promise<void> {
  const namespace = 'default';
  try {
    await connection.workflowService.describeNamespace({ namespace });
  } catch (err) {
    if (!isGrpcServiceError(err) || err.code !== GRPC_NOT_FOUND) throw err;
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('24h') });
  }
  await ensureSearchAttributes(connection, namespace);
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).pop() ?? 'no output';
}
