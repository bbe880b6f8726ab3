import * as os from 'node:os';
import { parseBudget, type BudgetLimit } from '../spec/budget';
import { DEFAULT_PLAN_MAX_TASKS } from '../spec/plan';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalizeBaseUrl, Openings, parseNetworkRule } from '../spec/network';
import { parseBytes, parseDuration } from '../spec/schema';
import { allowedImages } from './images';
import { toolchainsFrom, type GuardedDirs } from './toolchains';

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
  /** How long a run waits for a worker offering its sandbox driver before it fails (NIGHTSHIFT_DRIVER_WAIT). */
  driverWaitMs: number;
  /**
   * The only place a spec's repo may be (config/repoResolution.ts); relative paths are resolved against it. Default:
   * `$NIGHTSHIFT_HOME/repos`.
   */
  reposDir: string;
  /**
   * Where the hold-out test sets live (NIGHTSHIFT_HOLDOUT_DIR; docs/holdout.md): a check's `holdout: NAME` is
   * `<holdoutDir>/NAME`. Default: `$NIGHTSHIFT_HOME/holdout`.
   */
  holdoutDir: string;
  /** A prebuilt workflow bundle (bundleWorkflowCode) to load instead of bundling workflows/ at start. */
  workflowBundlePath?: string;
  /** Secret names a spec may ask for (NIGHTSHIFT_ALLOWED_SECRETS, comma-separated); none by default. */
  allowedSecrets: string[];
  /** The most tasks a plan may have (NIGHTSHIFT_PLAN_MAX_TASKS). */
  planMaxTasks: number;
  /** The most repos a campaign may have (NIGHTSHIFT_CAMPAIGN_MAX_REPOS). */
  campaignMaxRepos: number;
  /** KEY=VALUE file of secret values, besides the worker's environment. */
  secretsFile: string;
  /**
   * `$NIGHTSHIFT_HOME/spec-defaults.yml`: a quick spec's fields (spec/quick.ts) for a repo without a `.nightshift.yml`.
   */
  specDefaultsFile: string;
  /** Public URL of the API, for links. */
  publicUrl: string;
  /**
   * The Docker-API engine of the docker sandbox driver (DOCKER_HOST, a unix socket); unset = /var/run/docker.sock if
   * present.
   */
  dockerHost?: string;
  /** NIGHTSHIFT_MODEL_PRICES: `{"model-prefix": [inputUsdPerMTok, outputUsdPerMTok]}`, added to the built-in table. */
  modelPrices: Record<string, [number, number]>;
  /** NIGHTSHIFT_BUDGET: the server-wide model budget (`200usd/day`), over every run at once; unset = none. */
  serverBudget?: BudgetLimit;
  /** GitHub's REST API, for `deliver.pr` (NIGHTSHIFT_GITHUB_API_URL; GitHub Enterprise has its own). */
  githubApiUrl: string;
  /** The docker driver's sandbox image (sandbox/image/Dockerfile, or scripts/build-sandbox-image.sh). */
  dockerImage: string;
  /**
   * The images a spec's `sandbox.image` may name (docs/images.md): the default first, then NIGHTSHIFT_DOCKER_IMAGES
   * (comma-separated); a name without a tag means `:latest`.
   */
  dockerImages: string[];
  /**
   * NIGHTSHIFT_WEBHOOKS: receivers of run events (activities/notify/notifyWebhooks.ts). Read by workers only: the URLs
   * may hold secrets.
   */
  webhooks: Webhook[];
  /** Where artifacts are stored (NIGHTSHIFT_ARTIFACTS). */
  artifacts: ArtifactsConfig;
  /** NIGHTSHIFT_CORS_ORIGINS: exact origins (scheme://host[:port]) whose pages may call the API; none by default. */
  corsOrigins: string[];
  /**
   * NIGHTSHIFT_MODEL_UPSTREAMS: model API base URLs a spec's `agent.baseUrl` may name besides the vendors' defaults;
   * the gateway sends the real key there. They may be internal (a company gateway, a test's scripted model).
   */
  modelUpstreams: string[];
  /**
   * NIGHTSHIFT_EGRESS_INTERNAL: internal `host:port`s (loopback, private, this server's own addresses) that a spec's
   * `sandbox.network` may reach; every other internal address is refused, whatever a spec lists.
   */
  egressInternal: string[];
  /**
   * NIGHTSHIFT_SETUP_NETWORK: where every spec's setup commands may connect (e.g. the package registries), besides
   * their own `setup.network`.
   */
  setupNetwork: string[];
  /**
   * NIGHTSHIFT_ENV_CACHE_SIZE: the most each worker keeps of cached environments (docs/environments.md); least recently
   * used out.
   */
  envCacheBytes: number;
  /**
   * NIGHTSHIFT_TOOLCHAINS: the toolchains a spec may ask for (`sandbox.toolchains`), name → the real path of a host
   * directory whose `bin/` holds the tools, checked at load (config/toolchains.ts). Every bwrap sandbox of a run that
   * asks for one sees it read-only at that path, its `bin` first on PATH.
   */
  toolchains: Record<string, string>;
  /** NIGHTSHIFT_STREAMS_PER_TOKEN: event streams one token may hold open at once (api/streamSlots.ts); default 20. */
  streamsPerToken: number;
  /** NIGHTSHIFT_STREAMS_TOTAL: event streams the API holds open at once, all tokens together; default 200. */
  streamsTotal: number;
}

/** A receiver of run events: generic JSON, or the Slack incoming-webhook shape (`{"text": …}`). */
export interface Webhook {
  format: 'json' | 'slack';
  url: string;
}

/**
 * A directory (a shared mount serves several machines) or an S3-compatible bucket. The S3 credentials are the
 * server's own: they stay in this process, never in a workflow's input or history, never in a sandbox.
 */
export type ArtifactsConfig =
  | { driver: 'fs'; dir: string }
  | {
      driver: 's3';
      bucket: string;
      /** Key prefix, empty or ending in `/`. */
      prefix: string;
      /** An S3-compatible server (NIGHTSHIFT_S3_ENDPOINT), addressed path-style; unset = AWS. */
      endpoint?: string;
      region: string;
      /** Unset = the AWS SDK's default chain (shared config files, instance roles). */
      credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
    };

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const home = path.resolve(env.NIGHTSHIFT_HOME || path.join(os.homedir(), '.nightshift'));
  const port = intFrom(env, 'NIGHTSHIFT_PORT', 8420);
  const host = env.NIGHTSHIFT_HOST || '127.0.0.1';
  const allowedSecrets = (env.NIGHTSHIFT_ALLOWED_SECRETS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const reposDir = path.resolve(env.NIGHTSHIFT_REPOS_DIR || path.join(home, 'repos'));
  const holdoutDir = path.resolve(env.NIGHTSHIFT_HOLDOUT_DIR || path.join(home, 'holdout'));
  const artifacts = artifactsFrom(env, home, allowedSecrets);
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
    // Heartbeats reach Temporal every second (workers/worker.ts): five missed is a lost worker, and its runs resume
    // elsewhere about 6 s after it died; bench:fleet measures that, and counts false alarms on a busy machine.
    heartbeatTimeoutMs: settingFrom(env, 'NIGHTSHIFT_HEARTBEAT_TIMEOUT', '5s', parseDuration),
    workerQueueTimeoutMs: settingFrom(env, 'NIGHTSHIFT_WORKER_QUEUE_TIMEOUT', '2m', parseDuration),
    shutdownGraceMs: settingFrom(env, 'NIGHTSHIFT_SHUTDOWN_GRACE', '60s', parseDuration),
    // A minute: right after a Temporal restart its poller lists are empty until the workers poll again.
    driverWaitMs: settingFrom(env, 'NIGHTSHIFT_DRIVER_WAIT', '60s', parseDuration),
    reposDir,
    holdoutDir,
    workflowBundlePath: env.NIGHTSHIFT_WORKFLOW_BUNDLE || undefined,
    allowedSecrets,
    planMaxTasks: intFrom(env, 'NIGHTSHIFT_PLAN_MAX_TASKS', DEFAULT_PLAN_MAX_TASKS),
    campaignMaxRepos: intFrom(env, 'NIGHTSHIFT_CAMPAIGN_MAX_REPOS', 1000),
    secretsFile: path.join(home, 'secrets.env'),
    specDefaultsFile: path.join(home, 'spec-defaults.yml'),
    publicUrl: env.NIGHTSHIFT_PUBLIC_URL || `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    dockerHost: env.DOCKER_HOST || undefined,
    dockerImage: env.NIGHTSHIFT_DOCKER_IMAGE || 'nightshift-sandbox:latest',
    dockerImages: allowedImages(
      env.NIGHTSHIFT_DOCKER_IMAGE || 'nightshift-sandbox:latest',
      env.NIGHTSHIFT_DOCKER_IMAGES,
    ),
    modelPrices: pricesFrom(env.NIGHTSHIFT_MODEL_PRICES),
    serverBudget: serverBudgetFrom(env.NIGHTSHIFT_BUDGET),
    githubApiUrl: (env.NIGHTSHIFT_GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, ''),
    webhooks: webhooksFrom(env.NIGHTSHIFT_WEBHOOKS),
    artifacts,
    corsOrigins: (env.NIGHTSHIFT_CORS_ORIGINS ?? '')
      .split(',')
      .map((s) => s.trim().replace(/\/+$/, ''))
      .filter(Boolean),
    modelUpstreams: modelUpstreamsFrom(env.NIGHTSHIFT_MODEL_UPSTREAMS),
    egressInternal: egressInternalFrom(env.NIGHTSHIFT_EGRESS_INTERNAL),
    setupNetwork: setupNetworkFrom(env.NIGHTSHIFT_SETUP_NETWORK),
    envCacheBytes: settingFrom(env, 'NIGHTSHIFT_ENV_CACHE_SIZE', '10g', parseBytes),
    toolchains: toolchainsFrom(env.NIGHTSHIFT_TOOLCHAINS, guardedDirs(env, home, [reposDir, holdoutDir], artifacts)),
    streamsPerToken: intFrom(env, 'NIGHTSHIFT_STREAMS_PER_TOKEN', 20),
    streamsTotal: intFrom(env, 'NIGHTSHIFT_STREAMS_TOTAL', 200),
  };
}

/** What a toolchain must keep clear of, of this server's: the worker's home, Nightshift's data. */
export function guardedDirs(
  env: NodeJS.ProcessEnv,
  home: string,
  dirs: string[],
  artifacts: ArtifactsConfig,
): GuardedDirs {
  return {
    homes: [os.homedir(), ...(env.HOME ? [env.HOME] : [])],
    server: [home, ...dirs, ...(artifacts.driver === 'fs' ? [artifacts.dir] : [])],
  };
}

const S3_CREDENTIALS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];

/**
 * NIGHTSHIFT_ARTIFACTS: unset = `$NIGHTSHIFT_HOME/artifacts`; an absolute path or `file://` URL; or
 * `s3://bucket/prefix`.
 */
function artifactsFrom(env: NodeJS.ProcessEnv, home: string, allowedSecrets: string[]): ArtifactsConfig {
  const raw = env.NIGHTSHIFT_ARTIFACTS || '';
  if (!raw) return { driver: 'fs', dir: path.join(home, 'artifacts') };
  if (path.isAbsolute(raw)) return { driver: 'fs', dir: raw };
  if (raw.startsWith('file://')) return { driver: 'fs', dir: fileURLToPath(raw) };
  const s3 = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(raw);
  if (!s3)
    throw new Error(
      `NIGHTSHIFT_ARTIFACTS must be an absolute directory, a file:// URL or s3://bucket/prefix, got "${raw}"`,
    );
  const handedOut = S3_CREDENTIALS.filter((name) => allowedSecrets.includes(name));
  if (handedOut.length)
    throw new Error(
      `NIGHTSHIFT_ALLOWED_SECRETS names ${handedOut.join(', ')}, the artifact store's S3 credentials, which no sandbox may get`,
    );
  const prefix = (s3[2] ?? '').replace(/^\/+|\/+$/g, '');
  const {
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_SESSION_TOKEN: sessionToken,
  } = env;
  return {
    driver: 's3',
    bucket: s3[1],
    prefix: prefix ? `${prefix}/` : '',
    endpoint: env.NIGHTSHIFT_S3_ENDPOINT || undefined,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    credentials:
      accessKeyId && secretAccessKey
        ? { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }
        : undefined,
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
  const ok =
    typeof parsed === 'object' &&
    parsed !== null &&
    Object.values(parsed).every(
      (v) => Array.isArray(v) && v.length === 2 && v.every((n) => typeof n === 'number' && n >= 0),
    );
  if (!ok) throw new Error('NIGHTSHIFT_MODEL_PRICES must map model prefixes to [inputUsdPerMTok, outputUsdPerMTok]');
  return parsed as Record<string, [number, number]>;
}

const list = (raw: string | undefined) =>
  (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function modelUpstreamsFrom(raw: string | undefined): string[] {
  return list(raw).map((entry, i) => {
    try {
      return normalizeBaseUrl(entry);
    } catch (err) {
      // The entry is not echoed: it may carry a credential.
      throw new Error(`NIGHTSHIFT_MODEL_UPSTREAMS entry ${i + 1} ${(err as Error).message}`);
    }
  });
}

function egressInternalFrom(raw: string | undefined): string[] {
  const entries = list(raw);
  try {
    new Openings(entries);
  } catch (err) {
    throw new Error(`NIGHTSHIFT_EGRESS_INTERNAL: ${(err as Error).message}`);
  }
  return entries;
}

function setupNetworkFrom(raw: string | undefined): string[] {
  const entries = list(raw);
  for (const entry of entries) {
    try {
      parseNetworkRule(entry);
    } catch (err) {
      throw new Error(`NIGHTSHIFT_SETUP_NETWORK: "${entry}": ${(err as Error).message}`);
    }
  }
  return entries;
}

const SLACK_PREFIX = 'slack+';

/** Comma-separated URLs; `slack+https://…` selects the Slack format. */
function webhooksFrom(raw: string | undefined): Webhook[] {
  const entries = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return entries.map((entry, i): Webhook => {
    const format = entry.startsWith(SLACK_PREFIX) ? 'slack' : 'json';
    const url = format === 'slack' ? entry.slice(SLACK_PREFIX.length) : entry;
    // The message names the entry, not the URL: webhook URLs often carry their secret in the path.
    if (!isHttpUrl(url)) {
      throw new Error(
        `NIGHTSHIFT_WEBHOOKS entry ${i + 1} is not an http(s) URL without user:password@ (slack+https://… selects the Slack format)`,
      );
    }
    return { format, url };
  });
}

/** fetch refuses URLs with credentials, naming the URL in its error. */
function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return ['http:', 'https:'].includes(url.protocol) && !url.username && !url.password;
  } catch {
    return false;
  }
}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

/** A setting read by `parse` (a duration, a size), `fallback` when unset; a bad value's error names the variable. */
function settingFrom<T>(env: NodeJS.ProcessEnv, name: string, fallback: string, parse: (text: string) => T): T {
  try {
    return parse(env[name] || fallback);
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`);
  }
}

function serverBudgetFrom(text: string | undefined): BudgetLimit | undefined {
  if (!text) return undefined;
  const budget = parseBudget(text);
  if ('error' in budget) throw new Error(`NIGHTSHIFT_BUDGET: ${budget.error}`);
  return budget;
}
