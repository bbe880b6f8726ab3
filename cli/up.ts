import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { Server } from 'node:http';
import { closeServer, createApi } from '../api/server';
import { ensureSigningKey } from '../proof/keys';
import { TokenStore } from '../api/tokens';
import { guardedDirs, loadConfig, temporalAddressOf, type Config } from '../config';
import { foundToolchains } from '../config/toolchains';
import { createLogger, installTemporalLogging } from '../config/logger';
import { agentCliModules, agentCliMounts } from '../agents/cli';
import { probeDrivers } from '../sandbox/drivers';
import { findGo, findTemporal, TEMPORAL_CLI_WHAT } from '../temporal/cli';
import { TemporalConnection } from '../temporal/connection';
import { ensureSearchAttributes, startDevServer, type DevServer } from '../temporal/devServer';
import { createWorker, type NightshiftWorker } from '../workers/worker';
import { runExample } from './example';

export interface Parts {
  devServer: boolean;
  worker: boolean;
  api: boolean;
}

export interface Stack {
  config: Config;
  client: Client;
  token?: string;
  tokenCreated: boolean;
  apiUrl?: string;
  uiUrl?: string;
  /** The key proofs are signed with (`$NIGHTSHIFT_HOME/keys`). */
  signingKeyId: string;
  stop(): Promise<void>;
}

const say = (line: string) => process.stdout.write(line + '\n');

/** What a start has brought up so far: what a stop takes down. */
interface Running {
  devServer?: DevServer;
  connection?: TemporalConnection;
  nativeConnection?: NativeConnection;
  worker?: NightshiftWorker;
  workerDone?: Promise<void>;
  server?: Server;
}

/**
 * Stops what runs, once however often called: the API and the worker first, Temporal last (a draining worker still
 * reports its stages' ends to it).
 */
function stopper(running: Running): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      if (running.server) await closeServer(running.server);
      if (running.worker) {
        say('draining the worker (running stages finish or stop at their next heartbeat)…');
        running.worker.shutdown();
        await running.workerDone;
      }
      await running.nativeConnection?.close();
      await running.connection?.close();
      if (running.devServer) {
        say('stopping the Temporal dev server…');
        await running.devServer.stop();
      }
    })());
}

/** Listening from the start: a Ctrl-C while the parts come up stops what is up so far. */
function stopOnSignals(stop: () => Promise<void>, logger: ReturnType<typeof createLogger>): void {
  let signalled = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      // A second Ctrl-C does not wait for the drain; the dev server still gets its SIGTERM on exit.
      if (signalled) process.exit(1);
      signalled = true;
      void stop().then(
        () => process.exit(0),
        (err) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}

/** Brings up the parts, recording each in `running` as it comes up. */
async function startParts(
  parts: Parts,
  config: Config,
  running: Running,
  logger: ReturnType<typeof createLogger>,
): Promise<{ client: Client; token?: string; tokenCreated: boolean }> {
  if (parts.devServer && !config.temporalAddress) {
    say(`starting the Temporal dev server (data in ${config.home}/temporal)…`);
    running.devServer = await startDevServer({
      dataDir: `${config.home}/temporal`,
      port: config.temporalPort,
      uiPort: config.temporalUiPort,
      progress: say,
    });
  }
  const address = temporalAddressOf(config);
  const connection = (running.connection = await TemporalConnection.open({ address }).catch((err: Error) => {
    throw new Error(`cannot reach Temporal at ${address}: ${err.message}`);
  }));
  if (!running.devServer) await ensureSearchAttributes(connection, config.namespace);
  const client = new Client({ connection, namespace: config.namespace });

  if (parts.worker) {
    running.nativeConnection = await NativeConnection.connect({ address });
    running.worker = await createWorker({ config, connection: running.nativeConnection, logger });
    running.workerDone = running.worker.run();
  }
  if (!parts.api) return { client, tokenCreated: false };
  const tokens = new TokenStore(config.home);
  const { token, created } = tokens.ensureAdmin(config.token);
  const app = createApi({ client, config, tokens, logger });
  // Express 5 hands a failed listen (the port taken) to the callback, not to an 'error' listener.
  running.server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  return { client, token, tokenCreated: created };
}

/**
 * Start the parts of Nightshift this process runs, and stop them cleanly on SIGINT/SIGTERM/SIGHUP (or when the start
 * fails).
 */
export async function startStack(parts: Parts, config: Config = loadConfig()): Promise<Stack> {
  mkdirSync(config.home, { recursive: true });
  // Specs may name repos only in here (config/repoResolution.ts).
  mkdirSync(config.reposDir, { recursive: true });
  // Made at first start, so GET /v1/keys and `nightshift verify --key` have it before the first proof.
  const signingKeyId = ensureSigningKey(config.home).keyId;
  const logger = createLogger(config.home, 'nightshift');
  installTemporalLogging(logger);

  const running: Running = {};
  const stop = stopper(running);
  stopOnSignals(stop, logger);
  let started: Awaited<ReturnType<typeof startParts>>;
  try {
    started = await startParts(parts, config, running, logger);
  } catch (err) {
    // Nothing this start made outlives it: the caller reports the reason and the process can end.
    await stop().catch((stopErr: Error) => logger.error({ err: stopErr }, 'stopping after a failed start failed'));
    throw err;
  }

  running.workerDone?.catch((err: Error) => {
    say(`nightshift: the worker stopped: ${err.message}`);
    logger.error({ err }, 'worker failed');
    void stop().finally(() => process.exit(1));
  });
  return {
    config,
    ...started,
    apiUrl: running.server ? `http://${config.host}:${config.port}` : undefined,
    uiUrl: running.devServer?.uiUrl,
    signingKeyId,
    stop,
  };
}

function printAccess(stack: Stack): void {
  say('');
  const tokenOrigin = stack.tokenCreated ? ', made now' : stack.config.token ? ', from NIGHTSHIFT_TOKEN' : '';
  if (stack.apiUrl) say(`API        ${stack.apiUrl}   (token: ${stack.config.home}/token${tokenOrigin})`);
  if (stack.uiUrl) say(`Temporal   ${stack.uiUrl}`);
  say(
    `Temporal   ${temporalAddressOf(stack.config)} (gRPC), namespace ${stack.config.namespace}, task queue ${stack.config.taskQueue}`,
  );
  say(
    `proofs     signed by ${stack.signingKeyId} (public key: GET /v1/keys, or ${stack.config.home}/keys/signing.pub)`,
  );
  if (stack.tokenCreated && stack.token)
    say(`token      ${stack.token}   (shown once; also in ${stack.config.home}/token)`);
  say('');
}

/** `nightshift up`: dev server (unless TEMPORAL_ADDRESS) + worker + API; with --example, run the bundled example. */
export async function up(opts: Record<string, unknown>): Promise<void> {
  const stack = await startStack({ devServer: true, worker: true, api: true });
  printAccess(stack);
  say('Nightshift is up. Ctrl-C stops it (running stages are drained first).');
  if (opts.example) {
    await runExample({
      apiUrl: stack.apiUrl!,
      token: stack.token!,
      config: stack.config,
      uiUrl: stack.uiUrl,
      say,
    }).catch((err: Error) => say(`nightshift: the example failed: ${err.message}`));
  }
}

/** `nightshift worker`: one more worker for the fleet, against TEMPORAL_ADDRESS (or the local dev server). */
export async function worker(): Promise<void> {
  const stack = await startStack({ devServer: false, worker: true, api: false });
  say(
    `worker connected to ${temporalAddressOf(stack.config)}, task queue ${stack.config.taskQueue}; Ctrl-C drains and stops it.`,
  );
}

/** `nightshift serve`: the API alone. */
export async function serve(): Promise<void> {
  const stack = await startStack({ devServer: false, worker: false, api: true });
  printAccess(stack);
}

/**
 * `nightshift doctor`: what is installed and what is missing, with the fix. Exit 1 when something required is missing.
 */
export async function doctor(opts: Record<string, unknown>): Promise<void> {
  const version = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return r.status === 0 ? (r.stdout || r.stderr).split('\n')[0].trim() : null;
  };
  const temporal = findTemporal();
  const config = loadConfig();
  const { statuses } = await probeDrivers(config, 'doctor', agentCliMounts());
  const checks = [
    { name: 'node', required: true, found: process.version, fix: 'install Node.js 20 or newer' },
    { name: 'git', required: true, found: version('git', ['--version']), fix: 'apt-get install git' },
    // A worker needs one usable driver; bwrap is the default a spec gets.
    ...statuses.map((s) => ({
      name: `sandbox:${s.name}`,
      required: s.name === 'bwrap',
      found: s.usable ? s.detail : null,
      fix: s.detail,
    })),
    // Each image a spec may name (docs/images.md): what it lacks of the image contract.
    ...statuses.flatMap((s) =>
      (s.images ?? []).map((i) => ({
        name: `image ${i.name}`,
        required: false,
        found: i.missing.length ? null : `${i.id?.slice(0, 19)} offered`,
        fix: `not offered: ${i.missing.join(', ')}`,
      })),
    ),
    { name: 'prlimit', required: true, found: version('prlimit', ['--version']), fix: 'apt-get install util-linux' },
    toolchainCheck(config),
    ...agentCliVersions(version),
    {
      name: 'temporal',
      required: !process.env.TEMPORAL_ADDRESS,
      found: temporal && (version(temporal, ['--version']) ?? temporal),
      fix: findGo()
        ? `nightshift up builds it (${TEMPORAL_CLI_WHAT}), or set TEMPORAL_ADDRESS`
        : 'install Go to let nightshift up build it, put temporal on PATH, or set TEMPORAL_ADDRESS',
    },
    {
      name: 'go',
      required: false,
      found: findGo() && version(findGo()!, ['version']),
      fix: 'only needed to build the Temporal CLI',
    },
  ];
  if (opts.json) {
    say(JSON.stringify({ ok: checks.every((c) => c.found || !c.required), checks }, null, 2));
  } else {
    for (const c of checks)
      say(
        `${c.found ? 'ok     ' : c.required ? 'MISSING' : 'absent '} ${c.name.padEnd(18)} ${c.found ?? `→ ${c.fix}`}`,
      );
  }
  if (checks.some((c) => c.required && !c.found)) process.exitCode = 1;
}

/** The toolchains offered to sandboxes (NIGHTSHIFT_TOOLCHAINS), and those found here that could be, for `doctor`. */
function toolchainCheck(config: Config) {
  const offered = Object.entries(config.toolchains).map(([name, dir]) => `${name}=${dir}`);
  const found = foundToolchains(
    guardedDirs(process.env, config.home, [config.reposDir, config.holdoutDir], config.artifacts),
  ).filter((entry) => !Object.hasOwn(config.toolchains, entry.split('=')[0]));
  const more = found.length ? `found here: NIGHTSHIFT_TOOLCHAINS=${[...offered, ...found].join(',')}` : '';
  return {
    name: 'toolchains',
    required: false,
    found: offered.length ? `${offered.join(', ')}${more ? ` (also ${more})` : ''}` : null,
    fix: `none offered to sandboxes (sandbox.toolchains)${more ? `; ${more}` : ': NIGHTSHIFT_TOOLCHAINS=name=/dir,…'}`,
  };
}

/** The agent CLIs the project ships (npm dependencies), with their versions, for `doctor`. */
function agentCliVersions(version: (cmd: string, args: string[]) => string | null) {
  const modules = agentCliModules();
  const fix = 'npm ci (they are project dependencies)';
  return [
    {
      name: 'agent:claude-code',
      required: false,
      found: modules ? version(path.join(modules, '@anthropic-ai/claude-code/bin/claude.exe'), ['--version']) : null,
      fix,
    },
    {
      name: 'agent:codex',
      required: false,
      found: modules
        ? version(process.execPath, [path.join(modules, '@openai/codex/bin/codex.js'), '--version'])
        : null,
      fix,
    },
  ];
}
