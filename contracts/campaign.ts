// A campaign (issue 25, docs/campaigns.md): one spec over many repos, each repo a run of its own, tracked as a whole.
// Type-only: safe to import from workflow code.
import type { Decision, RunInput, RunStatus } from './run';

/** One repo of the campaign as admitted: its name, how its runs name it, and what admission settled for it. */
export interface CampaignRepoInput {
  /** The name the campaign gave (`repos:`). */
  name: string;
  /** The spec's `repo` for its run (a local path or a registered remote), as admission stored it. */
  repo: string;
  /** Its run's id: `<campaign>-<repo slug>`. */
  runId: string;
  /** Its delivery and forge, as admission settled them for this repo (a pull request by default on a forge). */
  deliver: RunInput['spec']['deliver'];
  forge?: RunInput['forge'];
}

/** `repos:` as a selector over a registered forge (config/forges.ts): an owner's repos matching a glob, with a file. */
export interface RepoSelector {
  forge: string;
  owner: string;
  /** A glob (picomatch) over the repos' names; `*` by default. */
  match: string;
  /** A path every selected repo holds on its default branch. */
  has?: string;
}

/** A repo the selector found, by its name on the forge, and where it is cloned from (under the forge's own URL). */
export interface SelectedRepo {
  name: string;
  cloneUrl: string;
}

/** The selector as resolved at the campaign's start: what it asked, when, and the registered repos it gave. */
export type ResolvedSelector = RepoSelector & { resolvedAt: string; repos: string[] };

/** A repo's own `.nightshift.yml` for its campaign run: which of checks, setup and scope it sets, or its problem. */
export type RepoOverrides =
  | { fields: Partial<Pick<RunInput['spec'], 'checks' | 'setup' | 'scope'>>; problem?: never }
  | { problem: string; fields?: never };

/** The workflow's argument: the per-repo run (its spec as admitted for the first repo) and the repos. */
export interface CampaignInput {
  run: RunInput;
  repos: CampaignRepoInput[];
  /** The most runs holding a sandbox at once. */
  concurrency: number;
  /** `batch`: one decision approves every run then awaiting approval; `each`: each run is decided on its own. */
  approvalMode: 'each' | 'batch';
  /** The selector the repos came from, when `repos:` was one. */
  selector?: ResolvedSelector;
  /** History events after which the campaign continues as new (default 4000; a test sets fewer). */
  continueAfterEvents?: number;
}

export type CampaignRepoState = 'queued' | 'running' | 'awaiting_approval' | 'succeeded' | 'failed' | 'cancelled';

export interface CampaignRepo {
  repo: string;
  runId: string;
  state: CampaignRepoState;
  /** Its run's status as the run last told the campaign. */
  status?: RunStatus;
  /** How many times it was started (a retry starts it again, from scratch). */
  attempts: number;
  /** The fields its own `.nightshift.yml` set for its run (checks, setup, scope), over the campaign's. */
  overrides?: string[];
  /** Requests for changes its runs took: a repo that needed none (and no retry) ran unattended. */
  requestedChanges?: number;
  branch?: string;
  commit?: string;
  proofId?: string;
  pullRequest?: { number: number; url: string };
  /** Its pull request, merged by a person on the forge (from the forge's webhook): when, by whom, into which commit. */
  merged?: { at: string; by: string; commit?: string };
  reason?: string;
  startedAt?: string;
  endedAt?: string;
}

export type CampaignDecision = Omit<Decision, 'kind'> & { kind: Decision['kind'] | 'retry'; runs?: string[] };

/**
 * The repos in each state, and `merged`: of the succeeded ones, those whose pull request a person merged (counted in
 * `succeeded` too, as a merged repo is a succeeded one).
 */
export type CampaignCounts = Record<CampaignRepoState, number> & { merged: number };

export type CampaignStatus = 'running' | 'paused' | 'succeeded' | 'partial' | 'failed' | 'cancelled';

export interface CampaignState {
  id: string;
  title: string;
  status: CampaignStatus;
  concurrency: number;
  approvalMode: 'each' | 'batch';
  counts: CampaignCounts;
  repos: CampaignRepo[];
  /** The counts over time (for the burndown): one entry per change, thinned to the last MAX entries. */
  history: { at: string; counts: CampaignCounts }[];
  /** The selector the repos came from, as resolved at the start. */
  selector?: ResolvedSelector;
  /** Batch decisions (each naming the runs it decided), retries and the cancel, with who made them. */
  decisions: CampaignDecision[];
  /** How many runs of this workflow came before (continue-as-new keeps the history bounded). */
  generation: number;
  /** Its signed proof as it last ended (`GET /v1/campaigns/:id/proof`), by digest: set at each end, a retry's too. */
  proofId?: string;
  createdAt: string;
  updatedAt: string;
}

/** What a campaign's run tells the campaign when its status changes; on its end, what it delivered. */
export interface CampaignRunReport {
  runId: string;
  status: RunStatus;
  branch?: string;
  commit?: string;
  proofId?: string;
  pullRequest?: { number: number; url: string };
  reason?: string;
  requestedChanges?: number;
}

/** What the campaign's proof is made from (activities/proof/writeCampaignProof.ts): its state as it ended, less the
 * burndown, and the digest of its spec. */
export interface CampaignProofInput {
  campaign: Pick<CampaignState, 'id' | 'title' | 'status' | 'createdAt' | 'repos' | 'decisions'>;
  specDigest: string;
}

/** From the API, on the forge's webhook: the pull request of the campaign's run `runId` was merged. */
export interface CampaignMerge {
  runId: string;
  pullRequest: number;
  at: string;
  by: string;
  commit?: string;
}
