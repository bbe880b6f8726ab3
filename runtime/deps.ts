import type { BudgetLimit } from '../spec/budget';
import type { Logger } from 'pino';
import type { Webhook } from '../config';
import type { SandboxDriver } from '../sandbox/sandbox';
import type { SandboxDriverName } from '../spec/schema';
import type { ArtifactStore } from '../store/artifacts';
import type { RunLog } from '../store/runLog';
import type { RunInput, WorkspaceRef } from '../contracts/run';
import type { SecretStore } from '../secrets/secretStore';
import type { SandboxSlots } from '../sandbox/slots';

/** What activities share on one worker, wired up by the worker. */
export interface ActivityDeps {
  home: string;
  store: ArtifactStore;
  runLog: RunLog;
  /** The sandbox drivers this worker offers; a run asks for one by name. */
  drivers: Partial<Record<SandboxDriverName, SandboxDriver>>;
  secrets: SecretStore;
  /** Extra model prices (USD per million tokens, input and output) by model-name prefix, for cost budgets. */
  modelPrices: Record<string, [number, number]>;
  /** The server-wide model budget (NIGHTSHIFT_BUDGET), beside each token's and repo's (budget/limits.ts). */
  serverBudget?: BudgetLimit;
  /** Receivers of run events (NIGHTSHIFT_WEBHOOKS), and the public URL their links (and pull requests') point to. */
  webhooks: Webhook[];
  publicUrl: string;
  /** How long a run waits for a worker offering its sandbox driver (NIGHTSHIFT_DRIVER_WAIT). */
  driverWaitMs: number;
  /** Its sandbox slots (NIGHTSHIFT_MAX_SANDBOXES), taken by claims, given back by teardowns. */
  slots: SandboxSlots;
  /** This worker: its name and its own task queue. */
  self: WorkspaceRef;
  logger: Logger;
  /** GitHub's REST API, for `deliver.pr`. */
  githubApiUrl: string;
  /** Model API base URLs the admin allows besides the vendors' (NIGHTSHIFT_MODEL_UPSTREAMS), normalized. */
  modelUpstreams: string[];
  /** The repos directory (NIGHTSHIFT_REPOS_DIR): a run's repo must be inside it on this worker too. */
  reposDir: string;
  /** The hold-out directory (NIGHTSHIFT_HOLDOUT_DIR): where a hold-out check's set is, on this worker. */
  holdoutDir: string;
  /** Internal host:ports the admin opened to sandboxes (NIGHTSHIFT_EGRESS_INTERNAL). */
  egressInternal: string[];
  /** Where every setup may connect besides its spec's list (NIGHTSHIFT_SETUP_NETWORK). */
  setupNetwork: string[];
  /** The toolchains this worker offers (NIGHTSHIFT_TOOLCHAINS): name → host directory. */
  toolchains: Record<string, string>;
  /** The most this worker keeps of cached environments (NIGHTSHIFT_ENV_CACHE_SIZE). */
  envCacheBytes: number;
  /**
   * A spec from a forge, judged as the API judges a submitted one (admission/prepareRun.ts, with the server's config).
   */
  prepareRun(text: string, submittedBy: string): RunInput;
  /** The server's spec defaults (spec-defaults.yml): what a repo without .nightshift.yml gets. */
  specDefaultsFile: string;
}
