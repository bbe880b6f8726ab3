import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { Server } from 'node:http';
import * as path from 'node:path';
import pino from 'pino';
import { createApi } from '../../api/server';
import { TokenStore } from '../../api/tokens';
import { TemporalConnection } from '../../temporal/connection';
import { verifyEveryProof } from './cosign';
import { loadConfig, type Config } from '../../config';
import { installTemporalLogging } from '../../config/logger';
import { unmountUnder } from '../../sandbox/overlay';
import { normalizeBaseUrl } from '../../spec/network';
import { createWorker, type NightshiftWorker } from '../../workers/worker';
import { FINAL_STATUSES, type RunState, type RunStatus } from '../../contracts/run';
import { freePort } from './ports';
import { makeRepo, tempDir } from './repos';

export { gitIn, makeRepo, tempDir } from './repos';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export interface TestStack {
  config: Config;
  client: Client;
  apiUrl: string;
  token: string;
  tokens: TokenStore;
  /** The in-process worker's name, unless `worker: false`. */
  workerName?: string;
  /** Env for a `nightshift` child process (worker, CLI) that joins this stack. */
  env: NodeJS.ProcessEnv;
  api<T = any>(
    method: string,
    route: string,
    opts?: { body?: string | object; token?: string | null; contentType?: string; headers?: Record<string, string> },
  ): Promise<ApiResponse<T>>;
  submit(spec: string | object, contentType?: string): Promise<string>;
  state(id: string): Promise<RunState>;
  waitFor(id: string, statuses: RunStatus[], timeoutMs?: number): Promise<RunState>;
  /**
   * What the admin would list in NIGHTSHIFT_MODEL_UPSTREAMS / NIGHTSHIFT_EGRESS_INTERNAL, for a server a test starts
   * after the stack: added to the config the in-process API and worker read (as `up --example` does).
   */
  adminAllows(what: { modelUpstream?: string; egressInternal?: string }): void;
  /** Stop the API's HTTP server and start a new one on the same port: clients see refused connections meanwhile. */
  restartApi(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The real parts, in this process: a client of the suite's Temporal dev server, the API on a free port and
 * (unless `worker: false`) a worker, all on a task queue and NIGHTSHIFT_HOME of their own.
 */
export async function startTestStack(
  opts: { worker?: boolean; env?: Record<string, string>; temporalAddress?: string } = {},
): Promise<TestStack> {
  const home = tempDir('home');
  const port = await freePort();
  const temporalAddress = opts.temporalAddress ?? process.env.NIGHTSHIFT_TEST_TEMPORAL;
  if (!temporalAddress) throw new Error('no Temporal dev server: run the tests through jest (globalSetup starts one)');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NIGHTSHIFT_HOME: home,
    NIGHTSHIFT_PORT: String(port),
    TEMPORAL_ADDRESS: temporalAddress,
    NIGHTSHIFT_TASK_QUEUE: `test-${randomBytes(4).toString('hex')}`,
    NIGHTSHIFT_HEARTBEAT_TIMEOUT: '5s',
    NIGHTSHIFT_WORKER_QUEUE_TIMEOUT: '20s',
    NIGHTSHIFT_SHUTDOWN_GRACE: '5s',
    // makeRepo's repos are in the suite's dir: specs name them by absolute path, inside the boundary.
    NIGHTSHIFT_REPOS_DIR: process.env.NIGHTSHIFT_TEST_DIR ?? require('node:os').tmpdir(),
    // The suite's Podman service, so workers offer the docker driver too.
    ...(process.env.NIGHTSHIFT_TEST_DOCKER_HOST ? { DOCKER_HOST: process.env.NIGHTSHIFT_TEST_DOCKER_HOST } : {}),
    ...opts.env,
  };
  const config = loadConfig(env);
  const logger = pino(
    { level: 'warn' },
    pino.destination({ dest: path.join(home, 'test.log'), sync: true, mkdir: true }),
  );
  installTemporalLogging(logger);
  const connection = await TemporalConnection.open({ address: temporalAddress });
  const client = new Client({ connection, namespace: config.namespace });
  const tokens = new TokenStore(home);
  const { token } = tokens.ensureAdmin();

  let nativeConnection: NativeConnection | undefined;
  let worker: NightshiftWorker | undefined;
  let workerDone: Promise<void> | undefined;
  if (opts.worker !== false) {
    nativeConnection = await NativeConnection.connect({ address: temporalAddress });
    worker = await createWorker({ config, connection: nativeConnection, logger });
    workerDone = worker.run();
  }
  const listen = () =>
    new Promise<Server>((resolve) => {
      const s = createApi({ client, config, tokens, logger }).listen(port, '127.0.0.1', () => resolve(s));
    });
  const closeApi = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Requests in flight are cut, as when the process dies.
    server.closeAllConnections();
    await closed;
  };
  let server = await listen();
  const apiUrl = `http://127.0.0.1:${port}`;

  const stack: TestStack = {
    config,
    client,
    apiUrl,
    token,
    tokens,
    workerName: worker?.self.worker,
    env,
    async api(method, route, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      const t = o.token === undefined ? token : o.token;
      if (t) headers.authorization = `Bearer ${t}`;
      let body: string | undefined;
      if (o.body !== undefined) {
        body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
        headers['content-type'] = o.contentType ?? (typeof o.body === 'string' ? 'text/markdown' : 'application/json');
      }
      // A pooled keep-alive connection the server closed (an API restart, or its keep-alive timeout on a loaded
      // machine) resets on reuse, or is found closed: a GET is tried again once.
      const res = await fetch(apiUrl + route, { method, headers, body }).catch(
        (err: Error & { cause?: { code?: string } }) => {
          if (method !== 'GET' || !['ECONNRESET', 'UND_ERR_SOCKET'].includes(err.cause?.code ?? '')) throw err;
          return fetch(apiUrl + route, { method, headers, body });
        },
      );
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (a diff, a log)
      }
      return { status: res.status, body: parsed as any, text, headers: res.headers };
    },
    async submit(spec, contentType) {
      const res = await stack.api('POST', '/v1/runs', { body: spec, contentType });
      if (res.status !== 202) throw new Error(`submit failed: ${res.status} ${res.text}`);
      return res.body.id;
    },
    async state(id) {
      const res = await stack.api('GET', `/v1/runs/${id}`);
      if (res.status !== 200) throw new Error(`GET /v1/runs/${id}: ${res.status} ${res.text}`);
      return res.body;
    },
    async waitFor(id, statuses, timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      let last: RunState | undefined;
      while (Date.now() < deadline) {
        const res = await stack.api('GET', `/v1/runs/${id}`);
        if (res.status === 200) {
          last = res.body as RunState;
          if (statuses.includes(last.status)) return last;
          if (FINAL_STATUSES.includes(last.status)) {
            throw new Error(
              `run ${id} ended ${last.status}, expected ${statuses.join('|')}: ${JSON.stringify(last.failure ?? last.stages.slice(-3))}`,
            );
          }
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      throw new Error(
        `run ${id} did not reach ${statuses.join('|')} within ${timeoutMs} ms (last: ${last?.status}/${last?.stage})`,
      );
    },
    adminAllows({ modelUpstream, egressInternal }) {
      if (modelUpstream) config.modelUpstreams.push(normalizeBaseUrl(modelUpstream));
      if (egressInternal) config.egressInternal.push(egressInternal);
    },
    async restartApi(downMs = 0) {
      await closeApi();
      await new Promise((r) => setTimeout(r, downMs));
      server = await listen();
    },
    async stop() {
      await closeApi();
      worker?.shutdown();
      await workerDone;
      await nativeConnection?.close();
      await connection.close();
      try {
        // Every proof the suite makes passes an independent verifier (docs/proof.md), not only the ones a test looks
        // at.
        await verifyEveryProof(config);
      } finally {
        // Workers killed by a test leave their sandboxes' overlays mounted (a replacement would sweep them).
        await unmountUnder(home);
        rmSync(home, { recursive: true, force: true });
      }
    },
  };
  return stack;
}

/** For a test file: a stack and a repo with `files`, made before its tests; the stack stopped after them. */
export function useTestStack(
  files: Record<string, string>,
  opts: Parameters<typeof startTestStack>[0] = {},
): { stack: TestStack; repo: string } {
  const made = {} as { stack: TestStack; repo: string };
  beforeAll(async () => {
    made.stack = await startTestStack(opts);
    made.repo = makeRepo(files);
  });
  afterAll(async () => {
    await made.stack?.stop();
  });
  return made;
}
