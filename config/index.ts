import * as os from 'node:os';
import * as path from 'node:path';
import { parseDuration } from '../spec/schema';

/** Everything the server, worker and CLI read from the environment, in one place. */
export interface Config {
  home: string;
  port: number;
  host: string;
  /** An admin token to accept instead of a generated one. */
  token?: string;
  /** Set = use that Temporal server; unset = start the dev server. */
  temporalAddress?: string;
  temporalPort: number;
  temporalUiPort: number;
  namespace: string;
  /** The shared task queue: workflows, and activities that any worker can run. */
  taskQueue: string;
  /** Concurrent workspace-bound activities (sandboxes) per worker. */
  maxSandboxes: number;
  heartbeatTimeoutMs: number;
  workerQueueTimeoutMs: number;
  shutdownGraceMs: number;
  /** Relative local repo paths in specs are resolved against this (default: the server's working directory). */
  reposDir: string;
  /** A prebuilt workflow bundle (bundleWorkflowCode) to load instead of bundling workflows/ at start. */
  workflowBundlePath?: string;
  /** Secret names a spec may ask for (NIGHTSHIFT_ALLOWED_SECRETS, comma-separated); none by default. */
  allowedSecrets: string[];
  /** KEY=VALUE file of secret values, besides the worker's environment. */
  secretsFile: string;
  /** Public URL of the API, for links. */
  publicUrl: string;
  /** The Docker-API engine of the docker sandbox driver (DOCKER_HOST, a unix socket); unset = /var/run/docker.sock if present. */
  dockerHost?: string;
  /** NIGHTSHIFT_MODEL_PRICES: `{"model-prefix": [inputUsdPerMTok, outputUsdPerMTok]}`, added to the built-in table. */
  modelPrices: Record<string, [number, number]>;
  /** The docker driver's sandbox image (sandbox/image/Dockerfile, or scripts/build-sandbox-image.sh). */
  dockerImage: string;
  /** NIGHTSHIFT_CORS_ORIGINS: exact origins (scheme://host[:port]) whose pages may call the API; none by default. */
  corsOrigins: string[];
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const home = path.resolve(env.NIGHTSHIFT_HOME || path.join(os.homedir(), '.nightshift'));
  const port = intFrom(env, 'NIGHTSHIFT_PORT', 8420);
  const host = env.NIGHTSHIFT_HOST || '127.0.0.1';
  return {
    home,
    port,
    host,
    token: env.NIGHTSHIFT_TOKEN || undefined,
    temporalAddress: env.TEMPORAL_ADDRESS || undefined,
    temporalPort: intFrom(env, 'NIGHTSHIFT_TEMPORAL_PORT', 7233),
    temporalUiPort: intFrom(env, 'NIGHTSHIFT_TEMPORAL_UI_PORT', 8233),
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.NIGHTSHIFT_TASK_QUEUE || 'nightshift',
    maxSandboxes: intFrom(env, 'NIGHTSHIFT_MAX_SANDBOXES', Math.max(2, os.cpus().length * 2)),
    heartbeatTimeoutMs: parseDuration(env.NIGHTSHIFT_HEARTBEAT_TIMEOUT || '30s'),
    workerQueueTimeoutMs: parseDuration(env.NIGHTSHIFT_WORKER_QUEUE_TIMEOUT || '2m'),
    shutdownGraceMs: parseDuration(env.NIGHTSHIFT_SHUTDOWN_GRACE || '60s'),
    reposDir: path.resolve(env.NIGHTSHIFT_REPOS_DIR || process.cwd()),
    workflowBundlePath: env.NIGHTSHIFT_WORKFLOW_BUNDLE || undefined,
    allowedSecrets: (env.NIGHTSHIFT_ALLOWED_SECRETS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    secretsFile: path.join(home, 'secrets.env'),
    publicUrl: env.NIGHTSHIFT_PUBLIC_URL || `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    dockerHost: env.DOCKER_HOST || undefined,
    dockerImage: env.NIGHTSHIFT_DOCKER_IMAGE || 'nightshift-sandbox:latest',
    modelPrices: pricesFrom(env.NIGHTSHIFT_MODEL_PRICES),
    corsOrigins: (env.NIGHTSHIFT_CORS_ORIGINS ?? '').split(',').map((s) => s.trim().replace(/\/+$/, '')).filter(Boolean),
  };
}

export function temporalAddressOf(config: Config): string {
  return config.temporalAddress ?? `127.0.0.1:${config.temporalPort}`;
}

function pricesFrom(raw: string | undefined): Record<string, [number, number]> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error('NIGHTSHIFT_MODEL_PRICES must be JSON: {"model-prefix": [inputUsdPerMTok, outputUsdPerMTok]}');
  }
  const ok = typeof parsed === 'object' && parsed !== null && Object.values(parsed).every((v) => Array.isArray(v) && v.length === 2 && v.every((n) => typeof n === 'number' && n >= 0));
  if (!ok) throw new Error('NIGHTSHIFT_MODEL_PRICES must map model prefixes to [inputUsdPerMTok, outputUsdPerMTok]');
  return parsed as Record<string, [number, number]>;
}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}
