// The JSON the page reads from the API: the fields it uses, as the server's types (contracts/run.ts, api/*.ts)
// define them. A declaration file, so both builds can import it; test/web.test.ts checks it against the server's.

export type RunStatus =
  | 'queued'
  | 'planning'
  | 'awaiting_plan_approval'
  | 'provisioning'
  | 'agent'
  | 'checking'
  | 'reviewing'
  | 'running_tasks'
  | 'awaiting_approval'
  | 'awaiting_budget'
  | 'delivering'
  | 'succeeded'
  | 'failed'
  | 'rejected'
  | 'cancelled'
  | 'timed_out';

export type Role = 'viewer' | 'submitter' | 'approver' | 'admin';

export interface Principal {
  name: string;
  role: Role;
}

export interface StageView {
  stage: string;
  iteration: number;
  status: 'running' | 'passed' | 'failed';
  startedAt: string;
  durationMs?: number;
  summary?: string;
}

export interface CheckView {
  name: string;
  passed: boolean;
  exitCode: number | null;
  durationMs: number;
  logTail: string;
  /** Held against the base (docs/checks.md): its tests then and now, and its canary run. */
  integrity?: {
    tests?: {
      base: { ran: number; skipped: number };
      now: { ran: number; skipped: number };
      source: 'junit' | 'names' | 'summary';
      format?: string;
    };
    canary?: { result: 'reported' | 'passed' | 'changed'; files: number } | { off: string };
    findings: { rule: string; message: string }[];
  };
  /** Why its result is only its exit code: no test counts could be read (docs/checks.md, "Unverified checks"). */
  unverified?: string;
}

export interface RunView {
  id: string;
  title: string;
  repo: string;
  branch: string;
  status: RunStatus;
  stage?: string;
  iteration: number;
  maxIterations: number;
  stages: StageView[];
  checks: CheckView[];
  review?: {
    verdict: 'approve' | 'changes';
    findings: { rule: string; message: string; file?: string; line?: number }[];
    notes?: string[];
  };
  /**
   * `channel: 'temporal'`: sent to Temporal directly, so `by` is only what the sender claimed; `forge`: a forge user's
   * review.
   */
  decisions: {
    kind: string;
    comment: string;
    by: string;
    at: string;
    channel: 'api' | 'forge' | 'temporal';
    verified: boolean;
  }[];
  diffId?: string;
  proofId?: string;
  finalCommit?: string;
  failure?: { stage: string; reason: string };
  /** A plan's tasks, and its integration once it started (docs/plans.md). */
  tasks?: PlanTaskView[];
  integration?: PlanTaskView;
  /** A campaign's run: the campaign's id. */
  campaign?: { id: string };
  /** A `tasks: auto` plan's task list as proposed (by `agent`) or corrected (by a person's name). */
  proposal?: { tasks: { id: string; task: string; needs: string[] }[]; by: string; at: string };
  /** A plan's task: its plan. */
  plan?: { id: string; task: string };
  /** Once its model budget was spent: why; `until`: stopped by a limit above the run, it goes on by itself then. */
  budget?: { stoppedBy: string; until?: string };
}

export interface PlanTaskView {
  id: string;
  needs: string[];
  state: 'waiting' | 'running' | 'passed' | 'failed' | 'skipped';
  status?: RunStatus;
  runId: string;
  reason?: string;
  startedAt?: string;
  endedAt?: string;
}

export interface RunSummaryView {
  id: string;
  title?: string;
  repo?: string;
  status: RunStatus;
  startedAt: string;
  closedAt?: string;
}

export interface ScheduleView {
  id: string;
  cron: string;
  title: string;
  paused: boolean;
  nextRunAt?: string;
  recentRuns: string[];
}

export interface SpecIssueView {
  field: string;
  message: string;
  line?: number;
}

export interface ApiErrorBody {
  error: { code: string; message: string; issues?: SpecIssueView[] };
}

export interface WorkerView {
  identity: string;
  host?: string;
  capacity?: number;
  load?: number;
  waiting?: number;
  drivers?: string[];
  agents?: { kind: string; version?: string }[];
  memoryBytes?: number;
  at?: string;
  lastSeen?: string;
}

export interface FleetView {
  taskQueue: string;
  workers: WorkerView[];
  runs: Partial<Record<RunStatus, number>>;
  queueDepth: { workflowTasks: number; activityTasks: number; claims: number };
}

/** GET /v1/repos/:name/defaults (api/repoDefaults.ts). */
export interface RepoDefaultsView {
  source: '.nightshift.yml' | 'server' | 'built-in';
  yaml: string;
}

/** An entry of GET /v1/repos (api/repoRoutes.ts): a repo the token may use; a remote's credential by its NAME only. */
export interface RepoView {
  name: string;
  kind: 'local' | 'remote';
  url?: string;
  forge?: string;
  credential?: string;
  approvers?: string[];
}

/** POST /v1/repos's answer: the registered repo and its webhook, whose secret is shown this once. */
export interface RepoAddedView {
  repo: { name: string; url: string; forge: string; credential?: string; approvers: string[] };
  webhook: { url: string; secret: string };
}

/** Usage summed over the spend ledger's rows (contracts/spend.ts). */
export interface SpendTotalsView {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** GET /v1/spend?by=… (contracts/spend.ts SpendSummarySchema): each group with its per-model share, and the total. */
export interface SpendView {
  by: 'token' | 'repo' | 'day' | 'model';
  groups: (SpendTotalsView & { key: string; models: Record<string, SpendTotalsView> })[];
  total: SpendTotalsView & { models: Record<string, SpendTotalsView> };
}

export type CampaignRepoState = 'queued' | 'running' | 'awaiting_approval' | 'succeeded' | 'failed' | 'cancelled';

export interface CampaignView {
  id: string;
  title: string;
  status: 'running' | 'paused' | 'succeeded' | 'partial' | 'failed' | 'cancelled';
  concurrency: number;
  approvalMode: 'each' | 'batch';
  /** `merged`: of the succeeded repos, those whose pull request a person merged. */
  counts: Record<CampaignRepoState, number> & { merged: number };
  repos: {
    repo: string;
    runId: string;
    state: CampaignRepoState;
    attempts: number;
    pullRequest?: { number: number; url: string };
    merged?: { at: string; by: string; commit?: string };
    reason?: string;
  }[];
  history: { at: string; counts: Record<CampaignRepoState, number> }[];
  unattended: number | null;
}
