import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../workflows/searchAttributes';
import { ensureTemporal } from './cli';

export interface DevServerOptions {
  /** Directory for the SQLite file and the server log. */
  dataDir: string;
  port: number;
  uiPort: number;
  /** Headless: no Web UI (tests). */
  headless?: boolean;
  progress?: (line: string) => void;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Start `temporal server start-dev` on a SQLite file in `dataDir`, so runs survive a server restart, and wait
 * until it answers. Its output goes to `dataDir/temporal.log`.
 */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const bin = await ensureTemporal(opts.progress);
  mkdirSync(opts.dataDir, { recursive: true });
  const args = [
    'server', 'start-dev',
    '--db-filename', path.join(opts.dataDir, 'temporal.db'),
    '--ip', '127.0.0.1',
    '--port', String(opts.port),
    '--log-level', 'warn',
    ...(opts.headless ? ['--headless'] : ['--ui-port', String(opts.uiPort)]),
    ...SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${k.type === 'TEXT' ? 'Text' : 'Keyword'}`]),
  ];
  const log = openSync(path.join(opts.dataDir, 'temporal.log'), 'a');
  const child = spawn(bin, args, { stdio: ['ignore', log, log] });
  const address = `127.0.0.1:${opts.port}`;
  let exited: string | undefined;
  child.on('exit', (code, signal) => {
    exited = `exit ${code ?? signal}`;
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`the Temporal dev server stopped at start (${exited}); see ${path.join(opts.dataDir, 'temporal.log')}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.healthService.check({});
        await ensureSearchAttributes(connection);
      } finally {
        await connection.close();
      }
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the Temporal dev server did not answer on ${address} within 60s: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    address,
    uiUrl: opts.headless ? undefined : `http://127.0.0.1:${opts.uiPort}`,
    process: child,
    stop: () => stopProcess(child),
  };
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
      missing.map((k) => [k.name, k.type === 'TEXT' ? IndexedValueType.INDEXED_VALUE_TYPE_TEXT : IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
    ),
  });
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
