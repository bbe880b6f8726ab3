// A campaign (docs/campaigns.md): one run per repo, never more than `concurrency` holding a sandbox, one repo's failure
// never stopping the others; paused, resumed, cancelled and retried by signals; batch decisions recorded. Its runs
// are started abandoned and report to it by signal, so it can continue as new (its history stays bounded however many
// repos) without touching them.
import {
  continueAsNew,
  condition,
  getExternalWorkflowHandle,
  log,
  ParentClosePolicy,
  patched,
  setHandler,
  startChild,
  workflowInfo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type {
  CampaignCounts,
  CampaignInput,
  CampaignMerge,
  CampaignRepoState,
  CampaignRunReport,
  CampaignState,
  CampaignStatus,
  RepoOverrides,
} from '../../contracts/campaign';
import type { RunInput, RunStatus } from '../../contracts/run';
import {
  batchDecisionSignal,
  campaignMergedSignal,
  campaignRunSignal,
  campaignStateQuery,
  cancelCampaignSignal,
  pauseCampaignSignal,
  resumeCampaignSignal,
  retryCampaignSignal,
} from '../messages';
import { CAMPAIGN_AWAITS_MERGES, CAMPAIGN_PROOF, CAMPAIGN_REPO_OVERRIDES } from '../patches';
import { CAMPAIGN_RUN_PRIORITY } from '../../contracts/taskQueues';
import { runSearchAttributes, STATUS_KEY } from '../searchAttributes';
import { specRun } from '../specRun';
import { recorded } from '../specRun/handlers';
import { anyWorker } from '../specRun/proxies';
import { errorMessage } from '../specRun/errors';
import { MINUTE, nowIso } from '../specRun/time';

/** The most entries the burndown keeps: older ones are thinned, every other one dropped. */
const MAX_HISTORY = 400;
/** Events after which a campaign continues as new (Temporal suggests it well before its own limits). */
const CONTINUE_AFTER_EVENTS = 4000;

export async function campaignRun(input: CampaignInput, carried?: CampaignState): Promise<CampaignState> {
  const state = carried ?? initialState(input);
  const asked: { cancel?: boolean; retry?: boolean } = {};
  setHandler(campaignStateQuery, () => state);
  setHandler(campaignRunSignal, (report) => recordReport(state, report));
  setHandler(campaignMergedSignal, (merge) => recordMerge(state, merge));
  setHandler(pauseCampaignSignal, () => {
    if (state.status === 'running') setStatus(state, 'paused');
  });
  setHandler(resumeCampaignSignal, () => {
    if (state.status === 'paused') setStatus(state, 'running');
  });
  setHandler(cancelCampaignSignal, (arg) => {
    if (asked.cancel || state.status === 'cancelled') return;
    asked.cancel = true;
    state.decisions.push(recorded(NO_ITERATION, 'cancel', arg));
  });
  setHandler(retryCampaignSignal, (arg) => {
    if (!state.repos.some((r) => r.state === 'failed') || asked.cancel) return;
    asked.retry = true;
    state.decisions.push({ ...recorded(NO_ITERATION, 'cancel', arg), kind: 'retry' });
  });
  setHandler(batchDecisionSignal, (arg) => {
    const { runs, kind } = arg;
    state.decisions.push({ ...recorded(NO_ITERATION, kind, arg), runs: runs.slice(0, state.repos.length) });
  });

  for (;;) {
    if (asked.cancel) return signProof(input, await cancelAll(state));
    if (asked.retry) retryFailed(state, asked);
    if (state.status === 'running') await startReady(input, state);
    // Not with a cancel or retry asked meanwhile (while runs were started): the new run would not know of it.
    const longHistory = workflowInfo().historyLength > (input.continueAfterEvents ?? CONTINUE_AFTER_EVENTS);
    if (longHistory && !asked.cancel && !asked.retry)
      await continueAsNew<typeof campaignRun>(input, { ...state, generation: state.generation + 1 });
    const ended = state.repos.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.state));
    if (ended) {
      const failed = state.repos.filter((r) => r.state !== 'succeeded').length;
      setStatus(state, failed === 0 ? 'succeeded' : failed === state.repos.length ? 'failed' : 'partial');
      await signProof(input, state);
      if (failed === 0) {
        // Only a campaign with pull requests to merge waits (and only one started since: the wait is a new command).
        if (unmerged(state) && patched(CAMPAIGN_AWAITS_MERGES))
          await condition(() => asked.cancel === true || !unmerged(state), input.run.spec.approval.timeout);
        return state;
      }
      // Open for a retry of the failed repos (once their fixture is fixed), as long as a run awaits approval.
      const woken = await condition(() => asked.retry || asked.cancel === true, input.run.spec.approval.timeout);
      if (!woken) return state;
      continue;
    }
    const before = JSON.stringify(state.counts) + state.status;
    await condition(() => asked.cancel || asked.retry || JSON.stringify(state.counts) + state.status !== before);
  }
}

/** Runs for queued repos while fewer than `concurrency` hold a sandbox (a run awaiting approval holds none). */
async function startReady(input: CampaignInput, state: CampaignState): Promise<void> {
  for (const repo of state.repos) {
    if (state.counts.running >= state.concurrency || state.status !== 'running') return;
    if (repo.state !== 'queued') continue;
    const admitted = input.repos.find((r) => r.runId === repo.runId)!;
    let spec = { ...input.run.spec, repo: admitted.repo, deliver: admitted.deliver };
    if (patched(CAMPAIGN_REPO_OVERRIDES)) {
      const own = await anyWorker.repoOverrides({ repo: admitted.repo }).catch((err): RepoOverrides => ({
        problem: `cannot read its .nightshift.yml: ${errorMessage(err)}`,
      }));
      if (own.problem !== undefined) {
        Object.assign(repo, { state: 'failed', attempts: repo.attempts + 1, reason: own.problem, endedAt: nowIso() });
        countAll(state);
        continue;
      }
      spec = { ...spec, ...own.fields };
      if (Object.keys(own.fields).length) repo.overrides = Object.keys(own.fields);
    }
    const run: RunInput = {
      ...input.run,
      spec,
      ...(admitted.forge ? { forge: admitted.forge } : {}),
      campaign: { id: state.id },
    };
    Object.assign(repo, { state: 'running', attempts: repo.attempts + 1, startedAt: nowIso() });
    countAll(state);
    try {
      const child = await startChild(specRun, {
        workflowId: repo.runId,
        args: [run],
        typedSearchAttributes: runSearchAttributes(spec),
        // The campaign continues as new and is cancelled by its own signal: its runs must outlive each of its runs.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        // Below a single run's (Temporal's default): its tasks wait behind single runs' where a queue is backlogged.
        priority: { priorityKey: CAMPAIGN_RUN_PRIORITY },
      });
      // The run reports its end by signal; its result here is only for the history (and never an unhandled failure).
      child.result().catch(() => undefined);
    } catch (err) {
      Object.assign(repo, { state: 'failed', reason: `could not start: ${errorMessage(err)}`, endedAt: nowIso() });
      countAll(state);
    }
  }
}

/** A run's report: its state in the campaign, and on its end what it delivered. Reports of an older attempt count. */
function recordReport(state: CampaignState, report: CampaignRunReport): void {
  const repo = state.repos.find((r) => r.runId === report?.runId);
  if (!repo || ['succeeded', 'failed', 'cancelled', 'queued'].includes(repo.state)) return;
  const { runId: _id, status, ...delivered } = report;
  repo.status = status;
  repo.state = repoState(status);
  if (['succeeded', 'failed', 'cancelled'].includes(repo.state)) {
    Object.assign(repo, delivered, { endedAt: nowIso() });
    if (status === 'rejected' || status === 'timed_out') repo.reason ??= status;
  }
  countAll(state);
}

/** A person merged a succeeded repo's pull request (the API found the run by it on the repo's forge). */
function recordMerge(state: CampaignState, merge: CampaignMerge): void {
  const repo = state.repos.find((r) => r.runId === merge?.runId);
  if (!repo || repo.state !== 'succeeded' || repo.merged || repo.pullRequest?.number !== merge.pullRequest) return;
  repo.merged = { at: merge.at, by: merge.by, ...(merge.commit ? { commit: merge.commit } : {}) };
  countAll(state);
}

/** Whether a succeeded repo's pull request is still to be merged. */
const unmerged = (state: CampaignState) =>
  state.repos.some((r) => r.state === 'succeeded' && r.pullRequest && !r.merged);

function repoState(status: RunStatus): CampaignRepoState {
  if (status === 'succeeded' || status === 'cancelled') return status;
  if (status === 'awaiting_approval') return 'awaiting_approval';
  // A rejected or timed-out run counts as failed, its reason saying which.
  return ['failed', 'rejected', 'timed_out'].includes(status) ? 'failed' : 'running';
}

/** The failed repos queued again, to start from scratch (same run id, a new run of it). */
function retryFailed(state: CampaignState, asked: { retry?: boolean }): void {
  asked.retry = false;
  for (const repo of state.repos.filter((r) => r.state === 'failed')) {
    for (const key of [
      'status',
      'branch',
      'commit',
      'proofId',
      'pullRequest',
      'reason',
      'endedAt',
      'overrides',
    ] as const)
      delete repo[key];
    repo.state = 'queued';
  }
  setStatus(state, 'running');
  countAll(state);
}

/** Every run not ended is asked to cancel (each tears its sandbox down); queued ones never start. */
async function cancelAll(state: CampaignState): Promise<CampaignState> {
  for (const repo of state.repos.filter((r) => r.state === 'queued'))
    Object.assign(repo, { state: 'cancelled', reason: 'cancelled before it started' });
  const open = state.repos.filter((r) => r.state === 'running' || r.state === 'awaiting_approval');
  await Promise.all(
    open.map((r) =>
      getExternalWorkflowHandle(r.runId)
        .cancel()
        .catch((err) => log.warn('a run was not cancelled', { runId: r.runId, error: errorMessage(err) })),
    ),
  );
  countAll(state);
  // Each reports its end once its sandbox is gone.
  await condition(() => state.counts.running + state.counts.awaiting_approval === 0, 10 * MINUTE);
  setStatus(state, 'cancelled');
  return state;
}

/** The campaign as it ended, signed (docs/campaigns.md, "The campaign's proof"); its digest kept as `proofId`. */
async function signProof(input: CampaignInput, state: CampaignState): Promise<CampaignState> {
  if (!patched(CAMPAIGN_PROOF)) return state;
  const { id, title, status, createdAt, repos, decisions } = state;
  state.proofId = await anyWorker.writeCampaignProof({
    campaign: { id, title, status, createdAt, repos, decisions },
    specDigest: input.run.specDigest,
  });
  return state;
}

function countAll(state: CampaignState): void {
  const counts = emptyCounts();
  for (const r of state.repos) {
    counts[r.state]++;
    if (r.merged) counts.merged++;
  }
  state.counts = counts;
  state.updatedAt = nowIso();
  state.history.push({ at: state.updatedAt, counts });
  if (state.history.length > MAX_HISTORY) state.history = state.history.filter((_, i) => i % 2 === 0);
}

function setStatus(state: CampaignState, status: CampaignStatus): void {
  state.status = status;
  state.updatedAt = nowIso();
  upsertSearchAttributes([{ key: STATUS_KEY, value: status }]);
}

const emptyCounts = (): CampaignCounts => ({
  queued: 0,
  running: 0,
  awaiting_approval: 0,
  succeeded: 0,
  failed: 0,
  cancelled: 0,
  merged: 0,
});

/** A campaign's decisions are of no iteration of a run. */
const NO_ITERATION = { iteration: 0 };

function initialState(input: CampaignInput): CampaignState {
  const { workflowId } = workflowInfo();
  const now = nowIso();
  const state: CampaignState = {
    id: workflowId,
    title: input.run.spec.title,
    status: 'running',
    concurrency: input.concurrency,
    approvalMode: input.approvalMode,
    counts: emptyCounts(),
    repos: input.repos.map((r) => ({ repo: r.name, runId: r.runId, state: 'queued', attempts: 0 })),
    history: [],
    ...(input.selector ? { selector: input.selector } : {}),
    decisions: [],
    generation: 0,
    createdAt: now,
    updatedAt: now,
  };
  countAll(state);
  return state;
}
