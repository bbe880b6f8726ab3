import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Connection } from '@temporalio/client';
import { TemporalConnection } from './connection';
import { temporal } from '@temporalio/proto';
import { hostToolEnv } from '../processes/hostTools';
import { SEARCH_ATTRIBUTES } from '../workflows/searchAttributes';
import { ensureTemporal } from './cli';

export interface DevServerOptions {
  /** Directory for the SQLite file and the server log. */
  dataDir: string;
  port: number;
  uiPort: number;
  /** Headless: no Web UI (tests). */
  headless?: boolean;
  /** The database in memory instead of `dataDir`: nothing survives a restart (the fast test tier never restarts it). */
  inMemory?: boolean;
  progress?: (line: string) => void;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * How Temporal matches tasks for Nightshift: by priority (a campaign's runs after single runs, docs/campaigns.md,
 * "Fairness"), in one partition per queue, where priority holds exactly (across partitions it is only approximate;
 * Nightshift's queues carry a few tasks a second at most, far below what one partition serves).
 */
export const MATCHING_CONFIG = {
  'matching.useNewMatcher': true,
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
} as const;

/**
 * Start `temporal server start-dev` on a SQLite file in `dataDir` (unless `inMemory`), so runs survive a server
 * restart, and wait until it answers. Its output goes to `dataDir/temporal.log`.
 */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const bin = await ensureTemporal(opts.progress);
  mkdirSync(opts.dataDir, { recursive: true });
  const args = [
    'server',
    'start-dev',
    ...(opts.inMemory ? [] : ['--db-filename', path.join(opts.dataDir, 'temporal.db')]),
    '--ip',
    '127.0.0.1',
    '--port',
    String(opts.port),
    '--log-level',
    'warn',
    ...(opts.headless ? ['--headless'] : ['--ui-port', String(opts.uiPort)]),
    ...SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${k.type === 'TEXT' ? 'Text' : 'Keyword'}`]),
    ...Object.entries(MATCHING_CONFIG).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${value}`]),
  ];
  const log = openSync(path.join(opts.dataDir, 'temporal.log'), 'a');
  // Its own process group: a Ctrl-C in the terminal reaches only its parent, which stops it after the worker drained.
  const child = spawn(bin, args, { stdio: ['ignore', log, log], env: hostToolEnv(), detached: true });
  stopWithParent(child);
  const address = `127.0.0.1:${opts.port}`;
  await waitUntilServing(
    child,
    address,
    'the Temporal dev server',
    path.join(opts.dataDir, 'temporal.log'),
    ensureSearchAttributes,
  );
  return {
    address,
    uiUrl: opts.headless ? undefined : `http://127.0.0.1:${opts.uiPort}`,
    process: child,
    stop: () => stopProcess(child),
  };
}

/** The last line of a server's log that says something (its reason to stop), cut to 300 characters. */
function lastLogLine(logPath: string): string {
  try {
    const lines = readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    return (lines.at(-1) ?? '(empty)').slice(0, 300);
  } catch {
    return '(unreadable)';
  }
}

/**
 * Wait until the server `child` answers on `address` and `ready` (registrations it needs) succeeds, retrying both
 * while it starts; kill it if it does not within `timeoutMs`.
 */
export async function waitUntilServing(
  child: ChildProcess,
  address: string,
  what: string,
  logPath: string,
  ready: (connection: Connection) => Promise<void>,
  timeoutMs = 60_000,
): Promise<void> {
  let exited: string | undefined;
  const onExit = (code: number | null, signal: string | null) => {
    exited = `exit ${code ?? signal}`;
  };
  child.on('exit', onExit);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (exited)
        throw new Error(`${what} stopped at start (${exited}); see ${logPath}, which ends: ${lastLogLine(logPath)}`);
      try {
        const connection = await TemporalConnection.open({ address, connectTimeout: 1000 });
        try {
          await connection.healthService.check({});
          await ready(connection);
        } finally {
          await connection.close();
        }
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(
            `${what} did not answer on ${address} within ${timeoutMs / 1000}s: ${(err as Error).message}`,
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    child.off('exit', onExit);
  }
}

/** An existing database may ignore `--search-attribute` for attributes added later: add what is missing. */
export async function ensureSearchAttributes(connection: Connection, namespace = 'default'): Promise<void> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTES.filter((k) => !customAttributes?.[k.name]);
  if (missing.length === 0) return;
  const IndexedValueType = temporal.api.enums.v1.IndexedValueType;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(
      missing.map((k) => [
        k.name,
        k.type === 'TEXT' ? IndexedValueType.INDEXED_VALUE_TYPE_TEXT : IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      ]),
    ),
  });
}

/**
 * A detached child no longer shares its parent's signals: should the parent exit without stopping it (a crash, a
 * second Ctrl-C), it is sent SIGTERM on the way out, so it shuts down cleanly rather than run on alone.
 */
function stopWithParent(child: ChildProcess): void {
  const onParentExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.on('exit', onParentExit);
  child.once('exit', () => process.off('exit', onParentExit));
}

export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
