// The pipeline of one spec. The workflow, not the agent, decides which stage runs next:
// provision → agent → scope → checks → review → (fix loop) → approval → rebase → proof → deliver, with teardown always.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { pullRequestBody } from './pullRequestBody';
import type { RunEvent } from '../activities/notify';
import { DECISION_SIG_MAX, SIGNAL_DESCRIPTIONS, approveSignal, cancelRequestedSignal, rejectSignal, requestChangesSignal, stateQuery } from './messages';
import { claimQueue } from './queues';
import { STATUS_KEY } from './searchAttributes';
import type { CheckResult, Decision, DecisionInput, ReviewResult, RunInput, RunState, RunStatus, StageName, StageRecord, WorkspaceRef } from './types';

const MINUTE = 60_000;
/** Webhook deliveries: about 15 s of backoff in all before a notification is given up (and logged). */
const NOTIFY_RETRY = { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 5 } as const;
/** Runs recorded before the rebase stage existed went from approval straight to the proof; their replays still do. */
const REBASE_PATCH = 'rebase-before-delivery';
/** Runs recorded before it held their workspace (approval not required) until the end. */
const FREE_WORKSPACE_PATCH = 'free-workspace-after-review';

type Problem = { stage: StageName; text: string };

export async function specRun(input: RunInput): Promise<RunState> {
  const { settings } = input;
  const info = workflowInfo();
  const spec = { ...input.spec, branch: input.spec.branch ?? defaultBranch(input.spec.title, info.workflowId) };
  const startedAt = info.startTime.toISOString();
  const state: RunState = {
    id: info.workflowId,
    title: spec.title,
    repo: spec.repo,
    branch: spec.branch,
    base: spec.base,
    status: 'queued',
    iteration: 0,
    maxIterations: spec.limits.iterations,
    stages: [],
    checks: [],
    scopeViolations: [],
    decisions: [],
    reprovisions: 0,
    submittedBy: input.submittedBy,
    createdAt: startedAt,
    updatedAt: startedAt,
  };

  // Handlers first, before any await, so early signals and queries are never lost.
  let pending: Decision | undefined;
  // The signature is kept as it came (bounded), for readers holding the key to judge; the workflow cannot.
  const recorded = (kind: Decision['kind'], arg: DecisionInput | undefined): Decision => {
    const sig = typeof arg?.sig === 'string' && arg.sig.length <= DECISION_SIG_MAX ? { sig: arg.sig } : {};
    return { kind, comment: String(arg?.comment ?? ''), by: String(arg?.by ?? 'temporal'), at: nowIso(), iteration: state.iteration, ...sig };
  };
  const decide = (kind: Decision['kind']) => (arg: DecisionInput | undefined) => {
    if (state.status !== 'awaiting_approval' || pending) {
      log.warn('decision ignored: the run is not awaiting approval', { kind, status: state.status });
      return;
    }
    pending = recorded(kind, arg);
  };
  setHandler(approveSignal, decide('approve'), { description: SIGNAL_DESCRIPTIONS.approve });
  setHandler(rejectSignal, decide('reject'), { description: SIGNAL_DESCRIPTIONS.reject });
  setHandler(requestChangesSignal, decide('requestChanges'), { description: SIGNAL_DESCRIPTIONS.requestChanges });
  setHandler(cancelRequestedSignal, (arg) => {
    state.decisions.push(recorded('cancel', arg));
  }, { description: SIGNAL_DESCRIPTIONS.cancelRequested });
  setHandler(stateQuery, () => state, { description: 'The run: status, stage, iteration, per-stage results and timings' });

  // Activities that any worker can run: they read and write only the shared artifact store.
  const anyWorker = proxyActivities<Activities>({
    startToCloseTimeout: '5m',
    retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
  });

  const webhooks = proxyActivities<Activities>({ summary: 'notify webhooks', startToCloseTimeout: '1m', retry: NOTIFY_RETRY });
  const notifications: Promise<void>[] = [];

  /** Tell the server's webhooks (activities/notify.ts), beside the pipeline: a slow or failing receiver never holds it up. */
  function notify(event: RunEvent): void {
    // Runs recorded before notifications existed replay without them.
    if (!patched('webhook-notifications')) return;
    const notice = { event, runId: state.id, title: state.title, status: state.status, stage: state.failure?.stage ?? state.stage, reason: state.failure?.reason, at: nowIso() };
    const delivery = async () => {
      try {
        await webhooks.notifyWebhooks(notice);
      } catch (err) {
        if (isCancellation(err)) return;
        // Out of retries: the run goes on, and its log says who was not told.
        await anyWorker.logFailedNotification({ runId: state.id, event, reason: errorMessage(err) }).catch((e) => log.warn('could not log a failed notification', { error: errorMessage(e) }));
      }
    };
    notifications.push(delivery());
  }

  const sandboxMs = spec.sandbox.timeout;
  let workspace: WorkspaceRef | undefined;

  /** Activities bound to the worker that holds the workspace (DESIGN: sandbox affinity). */
  function onWorkspaceWorker(ws: WorkspaceRef, startToCloseMs: number, summary: string) {
    const options: ActivityOptions = {
      taskQueue: ws.queue,
      summary,
      scheduleToStartTimeout: settings.workerQueueTimeoutMs,
      startToCloseTimeout: startToCloseMs,
      heartbeatTimeout: settings.heartbeatTimeoutMs,
      // Teardown must not start while a cancelled stage still runs in the sandbox (the SDK's default is TRY_CANCEL).
      cancellationType: 'WAIT_CANCELLATION_COMPLETED',
      // One attempt: a lost worker is handled below by moving the run, a user error must not repeat.
      retry: { maximumAttempts: 1 },
    };
    return proxyActivities<Activities>(options);
  }

  /**
   * A worker offering the run's sandbox driver, with a free sandbox slot: the claim waits in the driver's queue (and
   * on a full worker) as long as it takes, so a busy fleet queues runs rather than failing them.
   */
  async function claimWorker(): Promise<WorkspaceRef> {
    if (!patched('claim-by-driver')) return anyWorker.claimWorkspace();
    const { taskQueue } = workflowInfo();
    await anyWorker.findDriver({ driver: spec.sandbox.driver, taskQueue });
    return proxyActivities<Activities>({
      taskQueue: claimQueue(taskQueue, spec.sandbox.driver),
      summary: `claim a ${spec.sandbox.driver} worker with a free sandbox slot`,
      startToCloseTimeout: '30d',
      heartbeatTimeout: settings.heartbeatTimeoutMs,
      // A full worker hands the claim back; it is offered again at once, to whichever worker polls (no backoff).
      retry: { initialInterval: '200ms', backoffCoefficient: 1, maximumInterval: '200ms' },
    }).claimWorkspace({ runId: state.id });
  }

  /** Claim a worker and (re)create the workspace there, from the last checkpoint when there is one. */
  async function provision(): Promise<WorkspaceRef> {
    const ws = await claimWorker();
    const result = await onWorkspaceWorker(ws, 15 * MINUTE, `provision on ${ws.worker}`).provisionWorkspace({
      runId: state.id,
      repo: spec.repo,
      base: spec.base,
      branch: spec.branch,
      sandbox: spec.sandbox,
      checkpoint: state.checkpoint,
      baseCommit: state.baseCommit,
    });
    state.base = result.base;
    state.baseCommit = result.baseCommit;
    state.workspace = ws;
    return ws;
  }

  /** Run a step on the workspace's worker; when that worker is lost, re-provision on another and retry the step. */
  async function inWorkspace<T>(startToCloseMs: number, summary: string, step: (acts: Activities) => Promise<T>): Promise<T> {
    for (;;) {
      try {
        if (!workspace) workspace = await provision();
        return await step(onWorkspaceWorker(workspace, startToCloseMs, summary));
      } catch (err) {
        if (!isWorkerLost(err)) throw err;
        if (state.reprovisions >= settings.maxReprovisions) {
          throw ApplicationFailure.nonRetryable(`lost ${state.reprovisions + 1} workers while running "${summary}"; giving up`, 'WorkersLost');
        }
        state.reprovisions++;
        log.warn('worker lost; moving the run to another worker', { worker: workspace?.worker, summary });
        workspace = undefined;
      }
    }
  }

  const ensureWorkspace = () => inWorkspace(MINUTE, 'provision', async () => undefined);

  function setStatus(status: RunStatus): void {
    state.status = status;
    state.updatedAt = nowIso();
    upsertSearchAttributes([{ key: STATUS_KEY, value: status }]);
    setCurrentDetails(`**${status}** · iteration ${state.iteration}/${state.maxIterations}`);
  }

  /** Record a stage's timing and one-line outcome around `body`. */
  async function stage<T>(name: StageName, status: RunStatus | undefined, body: () => Promise<T>, outcome: (r: T) => [boolean, string]): Promise<T> {
    if (status) setStatus(status);
    state.stage = name;
    const record: StageRecord = { stage: name, iteration: state.iteration, status: 'running', startedAt: nowIso() };
    state.stages.push(record);
    const started = Date.now();
    const finish = (ok: boolean, summary: string) => {
      record.status = ok ? 'passed' : 'failed';
      record.endedAt = nowIso();
      record.durationMs = Date.now() - started;
      record.summary = summary;
      state.updatedAt = record.endedAt;
    };
    try {
      const result = await body();
      finish(...outcome(result));
      return result;
    } catch (err) {
      finish(false, isCancellation(err) ? 'cancelled' : errorMessage(err));
      throw err;
    }
  }

  function fail(stageName: StageName, reason: string): never {
    state.failure = { stage: stageName, reason };
    throw ApplicationFailure.nonRetryable(`${stageName}: ${reason}`, 'RunFailed');
  }

  /** The rule review, then, when the spec asks for one, the agent reviewer's pass; their findings together. */
  async function reviewChanges(diffId: string, changedFiles: string[]): Promise<ReviewResult> {
    const byRules = await anyWorker.reviewChanges({ diffId, changedFiles, maxDiffLines: spec.review.maxDiffLines });
    // Secrets the change adds were found before its diff was stored redacted.
    // So were changes to the test harness, which the checks did not run.
    // And the checks' tests held against the base's (missing, skipped, a canary reported passing).
    const blocking = [...(state.agent?.secretFindings ?? []), ...(state.agent?.harnessFindings ?? []), ...integrityFindings(state.checks)];
    const rules: ReviewResult = blocking.length ? { ...byRules, findings: [...blocking, ...byRules.findings], verdict: 'changes' } : byRules;
    if (!spec.review.agent) return rules;
    const byAgent = await inWorkspace(sandboxMs + 5 * MINUTE, `agent review, iteration ${state.iteration}`, (a) =>
      a.reviewWithAgent({ runId: state.id, title: spec.title, task: spec.task, agent: spec.agent, sandbox: spec.sandbox, secrets: spec.secrets, limits: spec.limits, modelUsage: state.modelUsage, timeoutMs: sandboxMs, iteration: state.iteration, diffId, commit: state.checkpoint!.commit }),
    );
    if (byAgent.modelUsage) state.modelUsage = byAgent.modelUsage;
    if (byAgent.budgetExhausted) fail('review', byAgent.budgetExhausted);
    const findings = [...rules.findings, ...byAgent.findings];
    return { ...rules, findings, verdict: findings.length ? 'changes' : 'approve', reportId: byAgent.reportId };
  }

  /** The spec's checks on the checkpoint; their failures as problems for the agent. */
  async function runChecks(): Promise<Problem[]> {
    if (!spec.checks.length) return [];
    const checks = await stage(
      'checks',
      'checking',
      // Each check may run three times: itself, at the base once per base (cached), and with a canary.
      () => inWorkspace(3 * spec.checks.length * sandboxMs + 5 * MINUTE, `checks, iteration ${state.iteration}`, (a) => a.runChecks({ runId: state.id, checks: spec.checks, iteration: state.iteration, checkpoint: state.checkpoint!, timeoutMs: sandboxMs, sandbox: spec.sandbox, secrets: spec.secrets, baseCommit: state.baseCommit, harness: spec.harness })),
      (r) => [r.every((c) => c.passed), r.map((c) => `${c.name} ${c.passed ? 'passed' : 'failed'}`).join(', ')],
    );
    state.checks = checks;
    return checks.filter((c) => !c.passed).map((c) => {
      const how = c.limitHit ? `a sandbox limit: ${c.limitHit}` : c.timedOut ? 'a timeout' : `exit code ${c.exitCode}`;
      if (c.holdout) return { stage: 'checks', text: holdoutFeedback(c, how) };
      // Its findings against the base are the review's (below in the feedback): said once.
      if (c.integrity?.findings.length && c.exitCode === 0 && !c.timedOut) return { stage: 'checks', text: `Check "${c.name}" (\`${c.command}\`) exited 0, but does not count as passed: see the review's findings on it.` };
      return { stage: 'checks', text: `Check "${c.name}" (\`${c.command}\`) failed with ${how}. Its log ends with:\n${c.logTail}` };
    });
  }

  /**
   * Put the approved branch on its base's current tip: other work (another run's, say) may have landed there while
   * this run worked or waited. A clean rebase is checked again; returns feedback for another agent iteration when the
   * rebase conflicts or a check fails on the rebased result.
   */
  async function rebaseOntoBase(): Promise<string | undefined> {
    const from = state.baseCommit!;
    const base = state.base!;
    const rebase = await stage(
      'rebase',
      'delivering',
      () => anyWorker.rebaseOntoBase({ runId: state.id, repo: spec.repo, base, branch: spec.branch, baseCommit: from, checkpoint: state.checkpoint!, iteration: state.iteration }),
      (r) => !r.moved ? [true, `${base} has not moved from ${from.slice(0, 12)}`] : r.conflicts.length ? [false, `${base} moved to ${r.baseCommit.slice(0, 12)}; conflicts in ${r.conflicts.join(', ')}`] : [true, `rebased onto ${base} at ${r.baseCommit.slice(0, 12)}`],
    );
    if (!rebase.moved) return undefined;
    // A workspace still held is on the old base: the next stage provisions one from the rebased checkpoint.
    await teardown();
    state.baseCommit = rebase.baseCommit;
    state.checkpoint = rebase.checkpoint;
    state.diffId = rebase.diffId;
    const moved = `The base branch ${base} moved from ${from.slice(0, 12)} to ${rebase.baseCommit} while this run was under way (other work landed on it).`;
    if (rebase.conflicts.length) {
      return `${moved} Your changes conflict with it in: ${rebase.conflicts.join(', ')}. The workspace now holds your changes on the new base, with git's conflict markers (<<<<<<< … ======= … >>>>>>>) in those files: resolve them so that both the base's changes and yours are kept, and remove the markers.`;
    }
    const problems = await runChecks();
    if (!problems.length) return undefined;
    return `${moved} Your changes were rebased onto it without conflicts, but on the new base:\n\n${problems.map((p) => `- ${p.text}`).join('\n\n')}`;
  }

  async function teardown(): Promise<void> {
    if (!workspace) return;
    const ws = workspace;
    workspace = undefined;
    state.workspace = undefined;
    await CancellationScope.nonCancellable(async () => {
      try {
        await onWorkspaceWorker(ws, 2 * MINUTE, 'teardown').teardownWorkspace({ runId: state.id, sandbox: spec.sandbox });
      } catch (err) {
        // A lost worker's files are swept when a worker starts on that machine again.
        log.warn('teardown failed', { error: errorMessage(err) });
      }
    });
  }

  /** The stages; returns how the run ended unless it failed (throws). */
  async function pipeline(): Promise<RunStatus> {
    await stage('provision', 'provisioning', ensureWorkspace, () => [true, `workspace on ${workspace?.worker}, base ${state.baseCommit?.slice(0, 12)}`]);

    let feedback: string | undefined;
    for (;;) {
      state.iteration++;
      state.feedback = feedback;

      const agent = await stage(
        'agent',
        'agent',
        () =>
          inWorkspace(sandboxMs + 5 * MINUTE, `agent, iteration ${state.iteration}`, (a) =>
            a.runAgent({ runId: state.id, title: spec.title, task: spec.task, agent: spec.agent, scope: spec.scope, checks: spec.checks, harness: spec.harness, iteration: state.iteration, feedback, baseCommit: state.baseCommit!, checkpoint: state.checkpoint, timeoutMs: sandboxMs, sandbox: spec.sandbox, secrets: spec.secrets, limits: spec.limits, modelUsage: state.modelUsage }),
          ),
        ({ result: r }) => [r.exitCode === 0, `exit ${r.exitCode ?? 'killed'}${r.timedOut ? ' (timed out)' : ''}, ${r.changedFiles.length} file(s) changed`],
      );
      state.agent = agent.result;
      state.diffId = agent.diffId;
      state.checkpoint = agent.checkpoint;
      if (agent.modelUsage) state.modelUsage = agent.modelUsage;
      // Another iteration would be refused by the gateway at once.
      if (agent.budgetExhausted) fail('agent', agent.budgetExhausted);
      // A hung agent would hang again: a timeout ends the run rather than spend another iteration's time limit.
      if (agent.result.timedOut) fail('agent', `agent timed out after ${humanDuration(sandboxMs)}`);

      const problems: Problem[] = [];
      const { changedFiles } = agent.result;
      if (agent.result.exitCode !== 0) {
        const how = agent.result.limitHit ? `after running into a sandbox limit: ${agent.result.limitHit}` : agent.result.timedOut ? 'a timeout' : `code ${agent.result.exitCode}`;
        problems.push({ stage: 'agent', text: `The agent exited with ${how}. Its log ends with:\n${agent.result.logTail}` });
      }

      const scope = await stage('scope', 'checking', () => anyWorker.checkScope({ changedFiles, scope: spec.scope }), (r) => [r.violations.length === 0, r.violations.length ? `out of scope: ${r.violations.join(', ')}` : 'all changes in scope']);
      state.scopeViolations = scope.violations;
      if (scope.violations.length) {
        problems.push({ stage: 'scope', text: `These files may not be changed (scope allow ${JSON.stringify(spec.scope.allow)}, deny ${JSON.stringify(spec.scope.deny)}); revert them: ${scope.violations.join(', ')}` });
      }

      problems.push(...(await runChecks()));

      // A harness change is reviewed (and so reaches the agent and the run's state) even when the checks, run on the
      // base's harness, failed: otherwise the agent would hear only of a failing check it thought it had passed. So
      // are the checks' own findings against the base, for the review, the web page and the proof to show.
      if (problems.length === 0 || agent.result.harnessFindings?.length || integrityFindings(state.checks).length) {
        const review = await stage('review', 'reviewing', () => reviewChanges(agent.diffId, changedFiles), (r) => [r.verdict === 'approve', r.findings.length ? r.findings.map((f) => f.message).join('; ') : `approved (${r.diffLines} diff lines)`]);
        state.review = review;
        for (const f of review.findings) problems.push({ stage: 'review', text: `Review (${f.rule}): ${f.message}` });
      }

      if (problems.length > 0) {
        if (state.iteration >= state.maxIterations) {
          fail(problems[0].stage, problems[0].text);
        }
        feedback = `The pipeline found problems in iteration ${state.iteration}. Fix them:\n\n${problems.map((p) => `- ${p.text}`).join('\n\n')}`;
        continue;
      }

      if (spec.approval.required) {
        // Nothing needs the workspace while a human decides (maybe for days): free the worker, keep the checkpoint.
        await teardown();
        const decision = await stage('approval', 'awaiting_approval', async () => {
          pending = undefined;
          notify('awaiting_approval');
          const decided = await condition(() => pending !== undefined, spec.approval.timeout);
          return decided ? (pending as Decision | undefined) : undefined;
        }, (d) => [d?.kind === 'approve', d ? `${d.kind} by ${d.by}${d.comment ? `: ${d.comment}` : ''}` : `no decision within ${humanDuration(spec.approval.timeout)}`]);

        if (!decision) {
          state.failure = { stage: 'approval', reason: `no decision within ${humanDuration(spec.approval.timeout)}` };
          return 'timed_out';
        }
        state.decisions.push(decision);
        if (decision.kind === 'reject') return 'rejected';
        if (decision.kind === 'requestChanges') {
          // A human's request gets a fresh budget of automatic fix iterations.
          state.maxIterations = state.iteration + spec.limits.iterations;
          feedback = `A reviewer requested changes${decision.by ? ` (${decision.by})` : ''}:\n\n${decision.comment}`;
          continue;
        }
      }

      // Nothing after the review needs the workspace (the rest works from the checkpoint): give the worker's sandbox
      // slot to the next run now, not after delivery.
      if (patched(FREE_WORKSPACE_PATCH)) await teardown();
      if (!patched(REBASE_PATCH)) break;
      feedback = await rebaseOntoBase();
      if (feedback === undefined) break;
      // The base moving is no fault of the agent's: like a human's request, it gets a fresh budget.
      state.maxIterations = state.iteration + spec.limits.iterations;
    }

    setStatus('delivering');
    state.finalCommit = state.checkpoint!.commit;
    state.proofId = await stage('proof', undefined, () => anyWorker.writeProof({ input, state }), (id) => [true, `signed proof.tar.gz ${id.slice(0, 12)}`]);
    const { pr } = spec.deliver;
    const delivery = await stage('deliver', undefined, () => anyWorker.deliverBranch({
      runId: state.id,
      repo: spec.repo,
      branch: spec.branch,
      checkpoint: state.checkpoint!,
      push: spec.deliver.push,
      ...(pr ? { pr: { repo: pr.repo, base: pr.base ?? state.base!, draft: pr.draft, title: spec.title, body: pullRequestBody(state) } } : {}),
    }), (r) => [true, r.summary]);
    state.pullRequest = delivery.pullRequest;
    return 'succeeded';
  }

  // The final status is set only once the sandbox is gone, so "ended" always means "cleaned up".
  let final: RunStatus;
  let error: unknown;
  try {
    final = await pipeline();
  } catch (err) {
    error = err;
    final = isCancellation(err) ? 'cancelled' : 'failed';
    state.failure ??= { stage: state.stage ?? 'provision', reason: final === 'cancelled' ? 'cancelled' : errorMessage(err) };
  }
  await teardown();
  setStatus(final);
  if (final === 'succeeded' || final === 'failed') notify(final);
  // The status is final already; the workflow stays open until the webhooks have heard (or their retries are spent).
  await Promise.all(notifications);
  if (final === 'cancelled') throw error;
  if (final === 'failed') throw ApplicationFailure.nonRetryable(`${state.failure!.stage}: ${state.failure!.reason}`, 'RunFailed', state);
  return state;
}

/** The checks' findings against the base: tests that no longer run, a harness that reported a canary passing. */
function integrityFindings(checks: CheckResult[]) {
  return checks.flatMap((c) => c.integrity?.findings ?? []);
}

/** A failed hold-out check, for the agent: which one, and how many of its tests failed; never what they are. */
function holdoutFeedback(c: CheckResult, how: string): string {
  const { problem, tests } = c.holdout!;
  if (problem) return `Hold-out check "${c.name}" could not run: ${problem}.`;
  const failed = tests ? `; ${tests.failed} of its ${tests.passed + tests.failed} tests failed` : '';
  return `Hold-out check "${c.name}" (\`${c.command}\`) failed with ${how}${failed}. Its tests are hidden from you: make the change right for every input, not only for the tests you can see.`;
}

/**
 * The worker holding the workspace stopped heartbeating, nobody polls its queue any more, or it was stopped (SIGTERM)
 * and its grace time ran out before the stage finished: Temporal's worker then fails the stage as `WorkerShutdown`.
 */
function isWorkerLost(err: unknown): boolean {
  if (!(err instanceof ActivityFailure)) return false;
  const { cause } = err;
  return (
    (cause instanceof TimeoutFailure && (cause.timeoutType === 'HEARTBEAT' || cause.timeoutType === 'SCHEDULE_TO_START')) ||
    (cause instanceof ApplicationFailure && cause.type === 'WorkerShutdown')
  );
}

function errorMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** nightshift/<title slug>-<last part of the run id>: unique per run, readable in `git branch`. */
export function defaultBranch(title: string, runId: string): string {
  const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '') || 'run';
  // Run ids made by the API (ns-<hex>) are readable as they are; schedule-made ones end in a timestamp: hash those.
  const short = /^ns-([a-z0-9]{6,16})$/.exec(runId)?.[1] ?? fnv1a(runId);
  return `nightshift/${slug}-${short}`;
}

function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** 259200000 → "72h", 90000 → "90s": how a person wrote it. */
export function humanDuration(ms: number): string {
  const units: [number, string][] = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'm'], [1000, 's']];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${ms}ms`;
}

function nowIso(): string {
  return new Date().toISOString();
}
