// Types shared by the workflow, its activities, the API and the CLI. Type-only: safe to import from workflow code.

import type { Spec } from '../spec/schema';
import type { PlanTaskState, TaskProposal } from './plan';

/** docs/reference.md, "Run states", in pipeline order. */
export const RUN_STATUSES = [
  'queued',
  /** A `tasks: auto` plan whose agent proposes its tasks, then waits for a person to approve them. */
  'planning',
  'awaiting_plan_approval',
  'provisioning',
  'agent',
  'checking',
  'reviewing',
  /** A plan whose tasks run, each as its own run (docs/plans.md). */
  'running_tasks',
  'awaiting_approval',
  /** Its model budget spent: the run waits for a person to raise it (docs/budgets.md). */
  'awaiting_budget',
  'delivering',
  'succeeded',
  'failed',
  'rejected',
  'cancelled',
  'timed_out',
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const FINAL_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'rejected', 'cancelled', 'timed_out'];

export type StageName =
  | 'provision'
  | 'setup'
  | 'agent'
  | 'scope'
  | 'checks'
  | 'review'
  | 'publish'
  | 'approval'
  | 'budget'
  | 'ci'
  | 'rebase'
  | 'proof'
  | 'deliver'
  | 'teardown';

export interface StageRecord {
  stage: StageName;
  iteration: number;
  status: 'running' | 'passed' | 'failed';
  startedAt: string;
  endedAt?: string;
  durationMs?: number;
  /** One line: what happened. */
  summary?: string;
}

export interface CommandResult {
  /** What ran, as the user wrote it. */
  command: string;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** Artifact id (sha256) of the full log. */
  logId: string;
  /** The last lines of the log, for feedback and the API. */
  logTail: string;
  /** A sandbox limit the command ran into ("out of memory (limit 512 MiB)"). */
  limitHit?: string;
  /**
   * The command its shell did not find, with the toolchains the server offers (exit 127): `go: not found in the
   * sandbox; toolchains offered: go, python (sandbox.toolchains)`.
   */
  notFound?: string;
}

/** An agent iteration: the command's result, the files it changed, and for agent CLIs what their event stream said. */
export interface AgentResult extends CommandResult {
  changedFiles: string[];
  /** Secrets the change adds (named, never their values): blocking findings of the review. */
  secretFindings?: ReviewFinding[];
  /** Protected harness files the change touches (judge/harness.ts): blocking findings of the review. */
  harnessFindings?: ReviewFinding[];
  summary?: AgentSummary;
  /** Artifact id of the CLI's raw event stream (`transcript.jsonl`), redacted. */
  transcriptId?: string;
  /** The agent CLI that ran (package, version, digest), for the proof's provenance. */
  tool?: AgentTool;
  /** The image the sandbox started from (docker), for the proof's provenance. */
  image?: SandboxImage;
  /** The worker it ran on. */
  worker?: string;
}

export interface CheckResult extends CommandResult {
  name: string;
  passed: boolean;
  /** The check's JUnit report totals, and the report's artifact id, when the spec names one (`junit`). */
  junit?: { tests: number; failures: number; errors: number; skipped: number; reportId: string };
  /** A hold-out check's set: the agent and the proof see this, never the files; its stored log is a summary only. */
  holdout?: HoldoutResult;
  /** How its tests compare with the base's, and whether it reported a canary failing (judge/baseline.ts). */
  integrity?: CheckIntegrity;
  /**
   * Why its result is only its exit code: its runner printed no test counts the worker can read, now or at the base,
   * so no baseline or canary judged it (docs/checks.md). Shown on the run, in the review's notes and the proof. Absent
   * in runs recorded before it.
   */
  unverified?: string;
}

/** A check held against its base: blocking findings make it fail, whatever its exit code. */
export interface CheckIntegrity {
  /** Tests that ran (and were skipped) at the base and now, from a JUnit report or the runner's summary. */
  tests?: {
    base: { ran: number; skipped: number };
    now: { ran: number; skipped: number };
    /** `names`: each test by name from the runner's own output (`go test -json`, `pytest -v`, `cargo test`). */
    source: 'junit' | 'names' | 'summary';
    /** What the counts were read from now, when neither a JUnit report nor a summary line (judge/tally.ts). */
    format?: string;
  };
  /**
   * A passing check's run with canaries: `reported` failing as it must, `passed` (the harness lies), `changed` (other
   * tests did not report as before), or why none ran.
   */
  canary?:
    | {
        result: 'reported' | 'passed' | 'changed';
        files: number;
        /** Its log; a hold-out check's is a line of the check's own log. */ logId?: string;
      }
    | { off: string };
  /**
   * The test files the change touched (judge/baseTests.ts): `laid`, run at the base's version against the change
   * (`result`, its log), and `allowed`, the spec's `allowTestChanges`, judged as the agent wrote them.
   */
  baseTests?: { laid: string[]; allowed: string[]; result?: 'passed' | 'failed'; logId?: string };
  findings: ReviewFinding[];
}

/** A hold-out check's set as it ran (docs/holdout.md). */
export interface HoldoutResult {
  set: string;
  /** sha256 over the set's sorted `path\0sha256(content)\n` lines. Absent when the set could not be read. */
  digest?: string;
  files?: number;
  /** Its tests' counts, from the check's JUnit report or a test runner's summary line, when there is one. */
  tests?: { passed: number; failed: number };
  /** Why the check could not run (the set is missing on the worker). */
  problem?: string;
}

export interface ReviewFinding {
  rule: string;
  message: string;
  file?: string;
  line?: number;
}

export interface ReviewResult {
  verdict: 'approve' | 'changes';
  findings: ReviewFinding[];
  diffLines: number;
  /** What the review could not verify and says so (a hold-out check no canary can be planted in): not blocking. */
  notes?: string[];
  /** Artifact id of the agent reviewer's report, when `review.agent` is set. */
  reportId?: string;
}

export interface DecisionInput {
  comment?: string;
  by?: string;
  /** The API's signature of the decision (proof/decisions.ts); anything else sending the signal has none. */
  sig?: string;
  /** Made on the run's forge (a review, a `/nightshift fix` comment): `by` is the forge user, checked by a worker. */
  via?: 'forge';
}

export interface Decision {
  /**
   * `cancel`: who asked the API to cancel the run (the cancellation itself is Temporal's); `raiseBudget`: a person
   * added `raise` to the run's spent model budget.
   */
  kind: 'approve' | 'reject' | 'requestChanges' | 'cancel' | 'raiseBudget';
  comment: string;
  /** As the signal claimed it: only a valid `sig` makes it the name of an API token. */
  by: string;
  at: string;
  /** The iteration the decision was made in (absent in runs recorded before it was kept). */
  iteration?: number;
  /** The signal's `sig`, recorded unjudged: the workflow has no key (proof/decisions.ts judges it). */
  sig?: string;
  /** As the signal said: only a valid `sig` makes it so (channel `forge`). */
  via?: 'forge';
  /** A `raiseBudget`'s additions to the run's limits. */
  raise?: BudgetRaise;
}

/** What a person adds to a run's model budget: tokens, dollars, or both. */
export interface BudgetRaise {
  tokens?: number;
  costUsd?: number;
}

/** A decision as the API and the proof show it: how it came, instead of its signature. */
export interface DecisionRecord extends Omit<Decision, 'sig'> {
  /**
   * `api`: signed by this server's API, so `by` is the token's name; `forge`: signed by a worker that checked the forge
   * user's rights, `by` is `<forge>:<user>`; `temporal`: sent to Temporal directly, `by` unverified.
   */
  channel: 'api' | 'forge' | 'temporal';
  verified: boolean;
}

/** The run as the API serves it (GET /v1/runs/:id, the events stream). */
export type RunStateView = Omit<RunState, 'decisions'> & { decisions: DecisionRecord[] };

/** A workspace snapshot: the branch's commit, stored as a git bundle in the artifact store. */
export interface Checkpoint {
  commit: string;
  /** Absent when the branch has no commit beyond its base yet. */
  bundleId?: string;
  afterStage: StageName;
  iteration: number;
  /**
   * After a rebase that conflicted: the files holding git's conflict markers, for the next agent iteration to resolve.
   */
  conflicts?: string[];
}

/** Where a run's workspace lives: the task queue of the worker that holds it. */
export interface WorkspaceRef {
  queue: string;
  worker: string;
}

/** Timeouts set by the server (not the spec), fixed at submit so replays see the same values. */
export interface RunSettings {
  /** How long a workspace-bound activity may go without a heartbeat before its worker is presumed dead. */
  heartbeatTimeoutMs: number;
  /** How long a task may wait on a worker's own queue before that worker is presumed gone. */
  workerQueueTimeoutMs: number;
  /** How many times a run may move to another worker after losing one. */
  maxReprovisions: number;
  /** The most tasks a plan may have (NIGHTSHIFT_PLAN_MAX_TASKS): a proposal is held to it too. Absent before it. */
  planMaxTasks?: number;
}

/** The workflow's argument. The run id is the workflow id (schedules make their own), so it is not in here. */
export interface RunInput {
  /** Validated spec with every default applied; `branch` defaults to nightshift/<slug>-<run id suffix>. */
  spec: Spec;
  /** sha256 of the spec as submitted. */
  specDigest: string;
  /** Token name of the submitter, or "schedule:<id>". */
  submittedBy: string;
  settings: RunSettings;
  /**
   * The repo is registered with a forge and the spec asks for a pull request: the run's branch is pushed and the pull
   * request opened after the review, before approval, and the forge's reviews and CI statuses drive the loop.
   * `issue`: the forge issue the run was started from.
   */
  forge?: { kind: 'gitea' | 'github'; issue?: number };
  /**
   * A plan's task: the plan's run id, the task's id and needs, and what merging them left in conflict (feedback).
   * The integration (task `integration`) starts at `start`, the merge of every task over the base, and its proof
   * names each task's proof (`tasks`).
   */
  plan?: {
    id: string;
    task: string;
    needs: string[];
    conflicts: string[];
    start?: Checkpoint;
    tasks?: { id: string; runId: string; needs: string[]; proofId: string; commit: string }[];
    /** A task run again at a person's request: the request, its first feedback. */
    feedback?: string;
  };
  /** A campaign's run (docs/campaigns.md): the campaign it reports its status to. */
  campaign?: { id: string };
}

/** A commit status (or check run) the forge reported for the run's pushed commit: the forge's CI, as a check. */
export interface ForgeStatus {
  sha: string;
  context: string;
  state: 'pending' | 'success' | 'failure' | 'error';
  description: string;
  url?: string;
}

/**
 * A run's environment: which cache entry, where it came from, what it holds, how long it took to have it in the
 * sandbox.
 */
export interface EnvironmentView {
  key: string;
  source: 'built' | 'worker' | 'store';
  paths: string[];
  home: boolean;
  bytes: number;
  /** `copy` where the worker cannot mount overlays (not root). */
  mounted: 'overlay' | 'copy';
  readyMs: number;
}

export interface RunState {
  id: string;
  title: string;
  repo: string;
  branch: string;
  base?: string;
  /** A plan's tasks (docs/plans.md), each its own run. */
  tasks?: PlanTaskState[];
  /** A `tasks: auto` plan: its planning run, and the task list proposed (and maybe corrected) for approval. */
  planning?: PlanTaskState;
  proposal?: TaskProposal;
  /** A plan's last child: every task merged, judged by the plan's checks, approved once (docs/plans.md). */
  integration?: PlanTaskState;
  /** A task's plan: the plan's run id and the task's id. */
  plan?: { id: string; task: string };
  /** A campaign's run: the campaign's id. */
  campaign?: { id: string };
  baseCommit?: string;
  status: RunStatus;
  stage?: StageName;
  iteration: number;
  maxIterations: number;
  stages: StageRecord[];
  /** Model tokens and cost of the run so far, as its gateway metered them. */
  modelUsage?: GatewayUsage;
  /** Once its model budget was spent: why, and its limits as raised since (docs/budgets.md). */
  budget?: {
    stoppedBy: string;
    limits: BudgetRaise;
    /** Stopped by a limit above the run (a token's, a repo's, the server's): when its window rolls over. */
    until?: string;
  };
  /** The latest agent run. */
  agent?: AgentResult;
  /** Results of the latest check pass. */
  checks: CheckResult[];
  scopeViolations: string[];
  review?: ReviewResult;
  /** Every human decision, in order; the last one with kind approve is the approval. */
  decisions: Decision[];
  /** Feedback given to the agent for the current iteration. */
  feedback?: string;
  diffId?: string;
  checkpoint?: Checkpoint;
  proofId?: string;
  /** The pull request delivery opened (or found), with `deliver.pr`. */
  pullRequest?: { number: number; url: string };
  /** On a forge: the commit the run last pushed for review, and the forge's statuses for it (one per context). */
  pushedCommit?: string;
  forgeStatuses?: ForgeStatus[];
  finalCommit?: string;
  failure?: { stage: StageName; reason: string };
  /** The environment the setup stage made or found (docs/environments.md); the setup's log when it failed. */
  environment?: EnvironmentView;
  setupLogId?: string;
  workspace?: WorkspaceRef;
  reprovisions: number;
  submittedBy: string;
  createdAt: string;
  updatedAt: string;
}

export type { WorkerReport } from './workerReport';

/** What the agent did, from its own event stream: the parts a CLI reports. */
export interface AgentSummary {
  turns?: number;
  toolCalls: number;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  finalMessage?: string;
  /** How the CLI said it ended ("success", "error_max_turns", …). */
  exitReason?: string;
}

/** An agent CLI as the run's provenance names it: its npm package, version, and the digest of what the sandbox runs. */
export interface AgentTool {
  name: string;
  version?: string;
  /** sha256 of the CLI's executable on this worker (the file the sandbox binds or the image copied). */
  digest?: string;
}

export interface SandboxImage {
  name: string;
  /** The image id (`sha256:…`): its config's digest, which names its layers. */
  digest: string;
}

export interface GatewayUsage {
  /** Requests forwarded to the upstream (refusals are not counted). */
  requests: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** The model ids the upstream answered as (its responses' `model`), for the run's provenance. */
  models?: string[];
}

/** The longest `sig` a decision records (an ed25519 signature in base64 is 88 characters). */
export const DECISION_SIG_MAX = 128;
