import {
  ApplicationFailure,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client';
import { createHash, randomBytes } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { Config } from '../config';
import { signDecision, withProvenance } from '../proof/decisions';
import { ensureSigningKey, listKeys } from '../proof/keys';
import type { ArtifactStore } from '../store/artifacts';
import { RUN_ID, type RunLog } from '../store/runLog';
import {
  approveSignal,
  cancelRequestedSignal,
  editTasksSignal,
  raiseBudgetSignal,
  redoTaskSignal,
  rejectSignal,
  requestChangesSignal,
  stateQuery,
} from '../workflows/messages';
import { PLAN_RUN_WORKFLOW, RUN_WORKFLOWS_QUERY, SPEC_RUN_WORKFLOW } from '../workflows/names';
import { REPO_KEY, STATUS_KEY, TITLE_KEY } from '../workflows/searchAttributes';
import { specRun } from '../workflows/specRun';
import { planRun } from '../workflows/planRun';
import {
  FINAL_STATUSES,
  RUN_STATUSES,
  type BudgetRaise,
  type Decision,
  type DecisionInput,
  type RunState,
  type RunStateView,
  type RunStatus,
} from '../contracts/run';
import { ApiError } from './errors';
import { streamEvents } from './events';
import { RunPollers } from './runPollers';
import type { StreamSlots } from './streamSlots';
import { principalOf, repoAllowed, repoLimitName, requireRepo, requireRole } from './auth';
import type { Principal } from './tokens';
import { loadQuickSpec } from './quickSpec';
import { prepareRun } from '../admission/prepareRun';
import { runStartOptions } from './submit';
import { titleOf } from '../spec/quick';
import { planProblems } from '../spec/plan';
import { ProposedTasksSchema } from '../spec/schema';

export interface RunsDeps {
  client: Client;
  config: Config;
  store: ArtifactStore;
  runLog: RunLog;
  /** The event streams open on the API (the campaigns' streams share them). */
  streams: StreamSlots;
  /** Where a quick run's repo is, for its `.nightshift.yml` (api/quickSpec.ts). */
}

/** `POST /v1/runs/quick`: a run from a repo, a title and a task; the rest from the repo's defaults (spec/quick.ts). */
export const QuickRunRequestSchema = z.strictObject({
  repo: z.string().trim().min(1, 'the repo to work on'),
  title: z.string().trim().max(200).optional().describe("Default: the task's first line (at most 80 characters)"),
  task: z.string().trim().min(1, 'what the agent should do, in plain words'),
  overrides: z
    .string()
    .max(100_000)
    .optional()
    .describe(
      "YAML: spec fields replacing the defaults' fields of the same name (null removes one), e.g. GET /v1/repos/{name}/defaults's yaml, edited",
    ),
});

/** A run as `GET /v1/runs` lists it, from Temporal visibility. */
export const RunSummarySchema = z.object({
  id: z.string(),
  title: z.string().optional(),
  repo: z.string().optional(),
  status: z.enum(RUN_STATUSES),
  startedAt: z.iso.datetime(),
  closedAt: z.iso.datetime().optional(),
});

/** `PUT /v1/runs/:id/tasks`: a `tasks: auto` plan's task list, corrected. */
export const TaskListCorrectionSchema = ProposedTasksSchema.extend({
  comment: z.string().max(20_000, 'comment is longer than 20000 characters').optional(),
});

/** The body of approve, reject, request-changes (and cancel, which ignores it). */
export const DecisionBodySchema = z.object({
  comment: z.string().max(20_000, 'comment is longer than 20000 characters').optional(),
  /** request-changes on a plan: the task to run again (and what needs it); none: the integration's agent. */
  task: z.string().max(100).optional(),
});

/** `POST /v1/runs/:id/budget`: what to add to a run's spent model budget (docs/budgets.md). */
export const BudgetRaiseBodySchema = z
  .strictObject({
    tokens: z.number().int('tokens must be a whole number').positive('tokens must be more than 0').max(1e9).optional(),
    costUsd: z.number().positive('costUsd must be more than 0').max(100_000, 'costUsd is at most 100000').optional(),
    comment: z.string().max(20_000, 'comment is longer than 20000 characters').optional(),
  })
  .refine((b) => b.tokens !== undefined || b.costUsd !== undefined, 'give tokens, costUsd or both to add');

// A run that ended outside the workflow's own code (terminated, say) keeps a stale status attribute.
const TEMPORAL_END: Record<string, RunStatus> = {
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  TERMINATED: 'cancelled',
  TIMED_OUT: 'timed_out',
};

export function runsRouter(deps: RunsDeps): Router {
  const runs = new RunRoutes(deps);
  const pollers = new RunPollers((id, stopped) => runs.currentState(id, stopped), deps.runLog);
  const router = Router();
  router.post('/', requireRole('submitter'), (req, res) =>
    runs.submit(req, res, bodyText(req), req.get('content-type')),
  );
  router.post('/quick', requireRole('submitter'), (req, res) => runs.submitQuick(req, res));
  router.get('/', requireRole('viewer'), (req, res) => runs.list(req, res));
  router.get('/:id', requireRole('viewer'), async (req, res) => {
    res.json(await runs.load(runId(req), principalOf(req)));
  });
  router.get('/:id/diff', requireRole('viewer'), (req, res) => runs.diff(req, res));
  router.get('/:id/proof', requireRole('viewer'), (req, res) => runs.proof(req, res));
  router.get('/:id/logs', requireRole('viewer'), (req, res) => runs.logs(req, res));
  router.get('/:id/events', requireRole('viewer'), async (req, res) => {
    const principal = principalOf(req);
    await deps.streams.serve(principal.name, () =>
      streamEvents(req, res, {
        id: runId(req),
        authorize: (id) => runs.authorize(id, principal),
        runLog: deps.runLog,
        pollers,
      }),
    );
  });
  const decisions = [
    ['approve', approveSignal, 'approve'],
    ['reject', rejectSignal, 'reject'],
    ['request-changes', requestChangesSignal, 'requestChanges'],
  ] as const;
  for (const [route, signal, kind] of decisions) {
    router.post(`/:id/${route}`, requireRole('approver'), async (req, res) => {
      const state = await runs.load(runId(req), principalOf(req));
      const { comment = '', task } = decisionBodyOf(req);
      if (route === 'request-changes' && !comment)
        throw new ApiError('bad_request', 'request-changes needs a comment: what should the agent change?');
      if (task !== undefined) runs.checkTaskNamed(state, route, task);
      if (state.status === 'awaiting_plan_approval') {
        if (route === 'request-changes')
          throw new ApiError(
            'conflict',
            `run ${state.id} awaits approval of its proposed tasks: correct them (PUT /v1/runs/${state.id}/tasks), approve or reject them`,
          );
        // The decision on the proposed tasks is the plan's own: they run once it approves.
        await deps.client.workflow
          .getHandle(state.id)
          .signal(signal, runs.signed(state, kind, comment, principalOf(req).name));
        res.status(202).json({ id: state.id, status: state.status });
        return;
      }
      // A run waiting for its budget can be rejected as well (it ends there).
      const budgetReject = route === 'reject' && state.status === 'awaiting_budget';
      if (state.status !== 'awaiting_approval' && !budgetReject)
        throw new ApiError('conflict', `run ${state.id} is ${state.status}, not awaiting approval`);
      if (task !== undefined) {
        // The plan runs the task again, then what needs it, then integrates anew (docs/plans.md).
        await deps.client.workflow
          .getHandle(state.id)
          .signal(redoTaskSignal, { ...runs.signed(state, kind, comment, principalOf(req).name), task });
        res.status(202).json({ id: state.id, status: state.status, task });
        return;
      }
      // A plan awaits approval in its integration: the decision is that run's, signed for it.
      const deciding = state.integration ? await runs.load(state.integration.runId, principalOf(req)) : state;
      await deps.client.workflow
        .getHandle(deciding.id)
        .signal(signal, runs.signed(deciding, kind, comment, principalOf(req).name));
      res.status(202).json({ id: state.id, status: state.status });
    });
  }
  router.put('/:id/tasks', requireRole('approver'), (req, res) => runs.correctTasks(req, res));
  router.post('/:id/budget', requireRole('approver'), (req, res) => runs.raiseBudget(req, res));
  router.post('/:id/cancel', requireRole('submitter'), (req, res) => runs.cancel(req, res));
  return router;
}

/** What the runs routes do, behind the role checks of the router. */
class RunRoutes {
  constructor(private readonly deps: RunsDeps) {}

  /**
   * Decisions sent from here are signed, so whoever reads them can tell them from signals sent to Temporal directly.
   * With the key in use now: the key may have been rotated since the server started.
   */
  signed(
    state: RunStateView,
    kind: Decision['kind'],
    comment: string,
    by: string,
    raise?: BudgetRaise,
  ): DecisionInput & BudgetRaise {
    return {
      comment,
      by,
      ...raise,
      sig: signDecision(ensureSigningKey(this.deps.config.home), state.id, {
        kind,
        by,
        comment,
        iteration: state.iteration,
        ...(raise ? { raise } : {}),
      }),
    };
  }

  /** Add to a run's spent budget: it goes on from its checkpoint (docs/budgets.md). */
  async raiseBudget(req: Request, res: Response): Promise<void> {
    const body = jsonBodyOf(req, BudgetRaiseBodySchema, '{"costUsd": 5, "tokens": 100000, "comment": "…"}');
    const { comment = '', ...raise } = body;
    const state = await this.load(runId(req), principalOf(req));
    if (state.status !== 'awaiting_budget')
      throw new ApiError('conflict', `run ${state.id} is ${state.status}, not awaiting budget`);
    await this.deps.client.workflow
      .getHandle(state.id)
      .signal(raiseBudgetSignal, this.signed(state, 'raiseBudget', comment, principalOf(req).name, raise));
    res.status(202).json({ id: state.id, status: state.status, raise });
  }

  /** A decision naming a task: only a request for changes on a plan may, and it must name one of the plan's tasks. */
  checkTaskNamed(state: RunStateView, route: string, task: string): void {
    if (route !== 'request-changes' || !state.tasks)
      throw new ApiError('bad_request', 'task: only a request for changes on a plan names a task');
    if (!state.tasks.some((t) => t.id === task))
      throw new ApiError(
        'bad_request',
        `task: no task "${task}" in plan ${state.id} (its tasks: ${state.tasks.map((t) => t.id).join(', ')})`,
      );
  }

  /**
   * A `tasks: auto` plan's proposed tasks, corrected by a person before approval: held to the rules a submitted
   * plan's are (the cut of the work only: what judges a task stays the spec's).
   */
  async correctTasks(req: Request, res: Response): Promise<void> {
    const principal = principalOf(req);
    const state = await this.load(runId(req), principal);
    const body = jsonBodyOf(req, TaskListCorrectionSchema, '{"tasks": [{"id": "…", "task": "…", "needs": []}]}');
    const problems = planProblems(body.tasks, this.deps.config.planMaxTasks);
    if (problems.length) throw new ApiError('bad_request', `${problems[0].field}: ${problems[0].message}`, problems);
    if (state.status !== 'awaiting_plan_approval')
      throw new ApiError('conflict', `run ${state.id} is ${state.status}, not awaiting approval of proposed tasks`);
    await this.deps.client.workflow
      .getHandle(state.id)
      .signal(editTasksSignal, { tasks: body.tasks, comment: body.comment ?? '', by: principal.name });
    res.status(202).json({ id: state.id, status: state.status, tasks: body.tasks });
  }

  /** The quick spec for the body's repo, title and task, submitted as a spec is (as JSON). */
  async submitQuick(req: Request, res: Response): Promise<void> {
    const body = jsonBodyOf(req, QuickRunRequestSchema, '{"repo": "…", "task": "…", "title": "…"}');
    const request = { repo: body.repo, task: body.task, title: body.title || titleOf(body.task) };
    const { spec } = await loadQuickSpec(
      this.deps,
      principalOf(req),
      request,
      body.overrides,
      (message) => new ApiError('bad_request', `invalid request: repo: ${message}`),
    );
    await this.submit(req, res, JSON.stringify(spec), 'application/json');
  }

  async submit(req: Request, res: Response, text: string, contentType: string | undefined): Promise<void> {
    const { client, config } = this.deps;
    const principal = principalOf(req);
    const input = prepareRun(text, contentType, principal.name, config);
    requireRepo(principal, input.spec.repo, config.reposDir, `repo ${repoLimitName(input.spec.repo, config.reposDir)}`);
    const key = req.get('idempotency-key');
    if (key !== undefined && !/^[\x21-\x7e]{1,200}$/.test(key))
      throw new ApiError('bad_request', 'Idempotency-Key must be 1-200 printable characters');
    // The same key from the same submitter always names the same run.
    const id = key
      ? `ns-${createHash('sha256').update(`${principal.name}\n${key}`).digest('hex').slice(0, 12)}`
      : `ns-${randomBytes(6).toString('hex')}`;
    try {
      // A plan (a spec with tasks) runs its tasks as runs of their own (docs/plans.md).
      await client.workflow.start(input.spec.tasks ? planRun : specRun, {
        ...runStartOptions(input, config),
        workflowId: id,
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
    } catch (err) {
      if (!(key && err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    const state = key ? await this.load(id, principal).catch(() => undefined) : undefined;
    res.status(202).json({ id, status: state?.status ?? 'queued', url: `${config.publicUrl}/v1/runs/${id}` });
  }

  async list(req: Request, res: Response): Promise<void> {
    const status = typeof req.query.status === 'string' && req.query.status !== '' ? req.query.status : undefined;
    if (status !== undefined && !(RUN_STATUSES as readonly string[]).includes(status)) {
      throw new ApiError('bad_request', `status must be one of ${RUN_STATUSES.join(', ')}`);
    }
    const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new ApiError('bad_request', 'limit must be an integer from 1 to 1000');
    const query = [RUN_WORKFLOWS_QUERY, status && `NightshiftStatus = '${status}'`].filter(Boolean).join(' AND ');
    const principal = principalOf(req);
    const runs = [];
    for await (const wf of this.deps.client.workflow.list({ query, pageSize: limit })) {
      const run = summary(wf);
      // A repo-limited token sees only its repos' runs (titles say what is being worked on).
      if (!repoAllowed(principal, run.repo, this.deps.config.reposDir)) continue;
      runs.push(run);
      if (runs.length >= limit) break;
    }
    // SQL visibility lists open runs before closed ones; the contract is newest first.
    runs.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
    res.json({ runs });
  }

  async diff(req: Request, res: Response): Promise<void> {
    const state = await this.load(runId(req), principalOf(req));
    if (!state.diffId) throw new ApiError('not_found', `run ${state.id} has no diff yet (status ${state.status})`);
    await this.sendArtifact(res.type('text/x-diff'), state.diffId);
  }

  async proof(req: Request, res: Response): Promise<void> {
    const state = await this.load(runId(req), principalOf(req));
    if (!state.proofId)
      throw new ApiError(
        'not_found',
        `run ${state.id} has no proof yet (status ${state.status}); a proof is signed after approval`,
      );
    await this.sendArtifact(res.type('application/gzip').attachment(`${state.id}-proof.tar.gz`), state.proofId);
  }

  async logs(req: Request, res: Response): Promise<void> {
    const state = await this.load(runId(req), principalOf(req));
    const from = req.query.from === undefined ? 0 : Number(req.query.from);
    if (!Number.isInteger(from) || from < 0)
      throw new ApiError('bad_request', 'from must be a byte offset (an integer ≥ 0)');
    const { text, next } = await this.deps.runLog.read(state.id, from);
    res.set('X-Next-Offset', String(next)).set('X-Run-Status', state.status).type('text/plain').send(text);
  }

  async cancel(req: Request, res: Response): Promise<void> {
    const state = await this.load(runId(req), principalOf(req));
    if (FINAL_STATUSES.includes(state.status))
      throw new ApiError('conflict', `run ${state.id} has already ended (${state.status})`);
    const handle = this.deps.client.workflow.getHandle(state.id);
    // Signalled first, so the run's decisions name who cancelled it before the cancellation reaches the workflow.
    // Signed for the iteration it saw: should the run move on before the signal lands, the record says unverified.
    await handle.signal(cancelRequestedSignal, this.signed(state, 'cancel', commentOf(req), principalOf(req).name));
    await handle.cancel();
    res.status(202).json({ id: state.id, status: state.status });
  }

  /** Streamed from the store: a proof is served without holding it in memory. */
  private async sendArtifact(res: Response, id: string): Promise<void> {
    const body = await this.deps.store.open(id);
    // Once streaming, a failure can only cut the response short (pipeline destroys it); headers are gone already.
    await pipeline(body, res).catch(() => undefined);
  }

  /**
   * The run's state from the workflow itself, with each decision's provenance judged by the server's key, or a 503
   * from visibility when it cannot be read; a 403 first when the run's repo is outside the principal's repo limits.
   */
  load(id: string, principal: Principal): Promise<RunStateView> {
    return this.read(id, this.repoCheck(principal));
  }

  /**
   * The 404 or 403 `load` would answer, without reading the run's state (for an event stream, whose poller reads it).
   */
  async authorize(id: string, principal: Principal): Promise<void> {
    await this.describe(id, this.repoCheck(principal));
  }

  /**
   * The run's state with no access check: for a run's event poller, whose every subscriber was authorized first.
   * Its calls to Temporal are cancelled when `stopped` aborts (the poller's last stream has gone).
   */
  currentState(id: string, stopped: AbortSignal): Promise<RunStateView> {
    return this.deps.client.withAbortSignal(stopped, () => this.read(id, () => undefined, stopped));
  }

  private repoCheck(principal: Principal): (description: WorkflowExecutionDescription) => void {
    return (description) =>
      requireRepo(
        principal,
        description.typedSearchAttributes.get(REPO_KEY),
        this.deps.config.reposDir,
        `run ${description.workflowId}`,
      );
  }

  private async describe(
    id: string,
    authorize: (description: WorkflowExecutionDescription) => void,
  ): Promise<WorkflowExecutionDescription> {
    let description;
    try {
      description = await this.deps.client.workflow.getHandle(id).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new ApiError('not_found', `no run with id ${id}`);
      throw err;
    }
    if (description.type !== SPEC_RUN_WORKFLOW && description.type !== PLAN_RUN_WORKFLOW)
      throw new ApiError('not_found', `no run with id ${id}`);
    authorize(description);
    return description;
  }

  private async read(
    id: string,
    authorize: (description: WorkflowExecutionDescription) => void,
    stopped?: AbortSignal,
  ): Promise<RunStateView> {
    const description = await this.describe(id, authorize);
    const handle = this.deps.client.workflow.getHandle(id);
    const { status } = summary(description);
    try {
      const state =
        (await endedState(handle, description.status.name)) ??
        (await openState(this.deps.client, handle, status, stopped));
      return withProvenance(
        state,
        listKeys(this.deps.config.home).map((k) => k.publicKeyPem),
      );
    } catch {
      throw new ApiError(
        'unavailable',
        `run ${id} is ${status}, but no worker answered for its details; is a worker running?`,
      );
    }
  }
}

const QUERY_DEADLINE_MS = 10_000;
/** How long a read waits for a run that has ended, but is still telling its webhooks, to close. */
const CLOSE_WAIT_MS = 30_000;

/**
 * A run that succeeded or failed returned its final state (or gave it as its failure's details): read from its
 * history, no worker needed to answer a query (on a busy machine one may not within the deadline).
 */
async function endedState(handle: WorkflowHandle, status: string): Promise<RunState | undefined> {
  return status === 'COMPLETED' || status === 'FAILED' ? resultState(handle) : undefined;
}

/** The state a closed run returned or failed with, once it has closed; undefined if it ended any other way. */
async function resultState(handle: WorkflowHandle): Promise<RunState | undefined> {
  try {
    return (await handle.result()) as RunState;
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === 'RunFailed' && cause.details?.length)
      return cause.details[0] as RunState;
  }
  return undefined;
}

/**
 * An open run's state, from a query its worker answers. A run whose status is final already stays open while its
 * webhooks are told; its state is then also read from its history once it closes, whichever comes first: on a loaded
 * machine (or with its worker gone for a moment) no query may be answered in time, while the close needs none.
 */
async function openState(
  client: Client,
  handle: WorkflowHandle,
  status: RunStatus,
  stopped?: AbortSignal,
): Promise<RunState> {
  const query = client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(stateQuery));
  if (!FINAL_STATUSES.includes(status)) return query;
  // The wait for the close is a long poll: stopped once the query has answered, not left open for its 30 s.
  const answered = new AbortController();
  const wait = AbortSignal.any([answered.signal, AbortSignal.timeout(CLOSE_WAIT_MS), ...(stopped ? [stopped] : [])]);
  const closed = client
    .withAbortSignal(wait, () => resultState(handle))
    .then((state) => state ?? Promise.reject(new Error(`run ${handle.workflowId} closed without a state`)));
  try {
    return await Promise.any([query, closed]);
  } finally {
    answered.abort();
  }
}

function summary(
  wf: Pick<WorkflowExecutionInfo, 'workflowId' | 'typedSearchAttributes' | 'status' | 'startTime' | 'closeTime'>,
): z.infer<typeof RunSummarySchema> {
  const attr = wf.typedSearchAttributes.get(STATUS_KEY) as RunStatus | undefined;
  const ended = TEMPORAL_END[wf.status.name];
  const status = ended && !(attr && FINAL_STATUSES.includes(attr)) ? ended : (attr ?? 'queued');
  return {
    id: wf.workflowId,
    title: wf.typedSearchAttributes.get(TITLE_KEY),
    repo: wf.typedSearchAttributes.get(REPO_KEY),
    status,
    startedAt: wf.startTime.toISOString(),
    closedAt: wf.closeTime?.toISOString(),
  };
}

function runId(req: Request): string {
  const id = String(req.params.id);
  if (!RUN_ID.test(id)) throw new ApiError('not_found', `no run with id ${id.slice(0, 200)}`);
  return id;
}

export function bodyText(req: Request): string {
  return typeof req.body === 'string' ? req.body : '';
}

/** A JSON body checked by `schema`, or a 400 naming the first bad field; `shape` shows what to send. */
export function jsonBodyOf<T extends z.ZodType>(req: Request, schema: T, shape: string): z.output<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(bodyText(req) || 'null');
  } catch {
    throw new ApiError('bad_request', `the body must be JSON: ${shape}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ field: i.path.join('.') || 'body', message: i.message }));
    throw new ApiError('bad_request', `${issues[0].field}: ${issues[0].message}`, issues);
  }
  return parsed.data;
}

/** `{comment}` from a JSON body; an empty body is an empty comment. */
export function commentOf(req: Request): string {
  return decisionBodyOf(req).comment ?? '';
}

/** `{comment, task}` from a JSON body; an empty body is an empty one. */
function decisionBodyOf(req: Request): z.infer<typeof DecisionBodySchema> {
  const text = bodyText(req).trim();
  if (!text) return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError('bad_request', 'the body must be JSON: {"comment": "…"}');
  }
  const parsed = DecisionBodySchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ApiError(
      'bad_request',
      issue.path.length
        ? `${issue.path.join('.')}: ${issue.message}`
        : 'the body must be a JSON object: {"comment": "…"}',
    );
  }
  return parsed.data;
}
