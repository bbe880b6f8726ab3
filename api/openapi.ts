import { z } from 'zod';
import { PublicKeyEntrySchema } from '../proof/keys';
import { ProofLogEntrySchema } from '../proof/log';
import { SpecSchema } from '../spec/schema';
import { RUN_STATUSES } from '../contracts/run';
import { ErrorBodySchema } from './errors';
import { FleetSchema } from './fleet';
import { RegisteredForgeSchema } from '../config/forges';
import { RemoteRepoInputSchema } from '../config/remotes';
import { RepoDefaultsSchema } from './repoDefaults';
import { RepoAddedSchema, RepoListingSchema } from './repoRoutes';
import {
  BudgetRaiseBodySchema,
  DecisionBodySchema,
  QuickRunRequestSchema,
  RunSummarySchema,
  TaskListCorrectionSchema,
} from './runs';
import { ScheduleRequestSchema, ScheduleSchema } from './schedules';
import { BudgetBodySchema, BudgetChangedSchema, BudgetsListingSchema } from './spend';
import { SpendSummarySchema } from '../budget/spendView';
import { SPEND_GROUPINGS } from '../contracts/spend';
import { RepoGlobsSchema, ROLES, type Role } from './tokens';

type JsonSchema = Record<string, unknown>;

interface Response {
  description: string;
  /** Media type → schema. */
  content?: Record<string, JsonSchema>;
  headers?: Record<string, string>;
}

/** One route of the API, as the OpenAPI document describes it. `path` is written as express writes it. */
export interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  /** The least role the route needs; absent = no token. */
  role?: Role;
  summary: string;
  query?: { name: string; description: string; schema: JsonSchema }[];
  headers?: { name: string; description: string }[];
  body?: { required: boolean; content: Record<string, JsonSchema> };
  responses: Record<number, Response>;
  /**
   * About one run or schedule (or making one): a token limited to repos (`token add --repos`) gets 403 for any other
   * repo.
   */
  repoLimited?: boolean;
}

/** A zod schema as JSON Schema (2020-12, OpenAPI 3.1's dialect); `input` for what a client sends. */
function schema(type: z.ZodType, io: 'input' | 'output' = 'output'): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(type, { io, unrepresentable: 'any' });
  return rest;
}

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const json = (s: JsonSchema) => ({ 'application/json': s });
const text = { type: 'string' };
const error = (description: string): Response => ({ description, content: json(ref('Error')) });
const runId = (what: string): Response => ({
  description: `${what}; 404 when there is no such run`,
  content: json(ref('Error')),
});
const accepted: Response = {
  description: 'Accepted: the run as it was before the request',
  content: json(schema(z.object({ id: z.string(), status: z.enum(RUN_STATUSES) }))),
};
const queued: Response = {
  description: 'Queued',
  content: json(schema(z.object({ id: z.string(), status: z.enum(RUN_STATUSES), url: z.url() }))),
};
const remoteUnread: Response = {
  description: "No worker read a registered repo's .nightshift.yml in time",
  content: json(ref('Error')),
};
const campaignId: Response = { description: 'No such campaign', content: json(ref('Error')) };
const conflict = (when: string): Response => ({ description: `Conflict: ${when}`, content: json(ref('Error')) });
const decisionBody = json(schema(DecisionBodySchema, 'input'));
const scheduleAction: Response = { description: 'Done', content: json(schema(z.object({ id: z.string() }))) };
const noSchedule: Response = { description: 'No such schedule', content: json(ref('Error')) };
const SCHEDULE_ACTIONS = {
  trigger: 'Start a run of the schedule now',
  pause: 'Pause a schedule',
  unpause: 'Resume a paused schedule',
};

/** The run's state (`RunState` in contracts/run.ts), described here rather than re-declared as a schema. */
const RUN_STATE: JsonSchema = {
  type: 'object',
  description:
    'The run as its workflow holds it: status, stage, iteration, per-stage results and timings, agent, checks, review, decisions (with the token name of who decided), proof id, branch.',
  required: [
    'id',
    'title',
    'repo',
    'branch',
    'status',
    'iteration',
    'stages',
    'checks',
    'decisions',
    'submittedBy',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: text,
    title: text,
    repo: text,
    branch: text,
    status: { enum: [...RUN_STATUSES] },
    stage: text,
    iteration: { type: 'integer' },
    stages: {
      type: 'array',
      items: { type: 'object', description: '{stage, iteration, status, startedAt, endedAt, durationMs, summary}' },
    },
    checks: {
      type: 'array',
      items: {
        type: 'object',
        description:
          '{name, command, passed, exitCode, durationMs, logId, logTail, notFound? (exit 127: the command not found, with the toolchains offered), junit?, holdout? (a hold-out check: {set, digest, files, tests?, problem?}; its log a summary only)}',
      },
    },
    decisions: {
      type: 'array',
      items: {
        type: 'object',
        description:
          'A decision and how it came: channel api (sent through this API, signed by the server; by is the token name, verified true) or temporal (a signal sent to Temporal directly; by is only what the sender claimed, verified false).',
        required: ['kind', 'comment', 'by', 'at', 'channel', 'verified'],
        properties: {
          kind: { type: 'string', enum: ['approve', 'reject', 'requestChanges', 'cancel'] },
          comment: { type: 'string' },
          by: { type: 'string' },
          at: { type: 'string', format: 'date-time' },
          iteration: { type: 'integer' },
          channel: { type: 'string', enum: ['api', 'temporal'] },
          verified: { type: 'boolean' },
        },
      },
    },
    proofId: text,
    failure: { type: 'object', description: '{stage, reason}' },
    submittedBy: text,
    createdAt: text,
    updatedAt: text,
  },
};

/** Every route the API serves, in one place: the document is made from this list, and a test holds the app to it. */
export const ROUTES: RouteDoc[] = [
  {
    method: 'get',
    path: '/healthz',
    summary: 'Liveness',
    responses: { 200: { description: 'Up', content: json(schema(z.object({ ok: z.literal(true) }))) } },
  },
  {
    method: 'get',
    path: '/v1/openapi.json',
    summary: 'This document',
    responses: { 200: { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } },
  },
  {
    method: 'get',
    path: '/metrics',
    role: 'viewer',
    summary:
      'Prometheus metrics: nightshift_runs{status}, nightshift_queue_depth, nightshift_stage_duration_seconds{stage}, nightshift_model_tokens_total{model,kind}, nightshift_model_cost_usd_total{model}',
    responses: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': text } } },
  },
  {
    method: 'post',
    path: '/v1/runs',
    role: 'submitter',
    repoLimited: true,
    summary: 'Submit a spec',
    headers: [
      { name: 'Idempotency-Key', description: 'A retry with the same key (from the same token) returns the same run' },
    ],
    body: {
      required: true,
      content: {
        'text/markdown': { ...text, description: 'YAML front matter, the body is the task' },
        'application/yaml': text,
        ...json(schema(SpecSchema, 'input')),
      },
    },
    responses: {
      202: queued,
      400: { description: 'An invalid spec: `issues` name each field and line', content: json(ref('Error')) },
    },
  },
  {
    method: 'post',
    path: '/v1/runs/quick',
    role: 'submitter',
    repoLimited: true,
    summary:
      "Submit a run from a repo, a title and a task: the other fields from the repo's .nightshift.yml (its default branch), else the server's spec-defaults.yml, else `agent: {kind: claude-code}`",
    headers: [
      { name: 'Idempotency-Key', description: 'A retry with the same key (from the same token) returns the same run' },
    ],
    body: { required: true, content: json(schema(QuickRunRequestSchema, 'input')) },
    responses: {
      202: queued,
      400: {
        description:
          'A bad request, overrides (`issues` name their lines) or repo .nightshift.yml (the message names the file)',
        content: json(ref('Error')),
      },
      503: remoteUnread,
    },
  },
  {
    method: 'get',
    path: '/v1/repos/:name/defaults',
    role: 'viewer',
    repoLimited: true,
    summary:
      'The spec a quick run of the repo starts from (title and task left out), and where it came from; the name URL-encoded (team%2Fapp)',
    responses: {
      200: { description: 'The defaults', content: json(schema(RepoDefaultsSchema)) },
      400: {
        description:
          "The repo's .nightshift.yml is not valid YAML or spec fields (the message names the file and line)",
        content: json(ref('Error')),
      },
      404: { description: 'No such repo', content: json(ref('Error')) },
      503: remoteUnread,
    },
  },
  {
    method: 'get',
    path: '/v1/runs',
    role: 'viewer',
    summary: "Runs, newest first (Temporal visibility); a repo-limited token sees its repos' runs only",
    query: [
      { name: 'status', description: 'Only runs in this status', schema: { enum: [...RUN_STATUSES] } },
      {
        name: 'limit',
        description: 'At most this many (default 50)',
        schema: { type: 'integer', minimum: 1, maximum: 1000 },
      },
    ],
    responses: {
      200: { description: 'The runs', content: json(schema(z.object({ runs: z.array(RunSummarySchema) }))) },
    },
  },
  {
    method: 'get',
    path: '/v1/runs/:id',
    role: 'viewer',
    repoLimited: true,
    summary: "A run's state",
    responses: { 200: { description: 'The run', content: json(RUN_STATE) }, 404: runId('No such run') },
  },
  {
    method: 'get',
    path: '/v1/runs/:id/events',
    repoLimited: true,
    role: 'viewer',
    summary: "The run's state and log as Server-Sent Events; replays what happened so far, resumes from Last-Event-ID",
    headers: [{ name: 'Last-Event-ID', description: 'Resume after this event' }],
    responses: {
      200: { description: 'An event stream', content: { 'text/event-stream': text } },
      404: runId('No such run'),
      429: error(
        'Too many event streams open: for this token (NIGHTSHIFT_STREAMS_PER_TOKEN) or on the server (NIGHTSHIFT_STREAMS_TOTAL); the message names the cap',
      ),
    },
  },
  {
    method: 'get',
    path: '/v1/runs/:id/diff',
    role: 'viewer',
    repoLimited: true,
    summary: 'The current diff against the base',
    responses: {
      200: { description: 'A unified diff', content: { 'text/x-diff': text } },
      404: runId('No such run, or no diff yet'),
    },
  },
  {
    method: 'get',
    path: '/v1/runs/:id/proof',
    repoLimited: true,
    role: 'viewer',
    summary: 'The signed proof bundle of a succeeded run',
    responses: {
      200: {
        description: 'proof.tar.gz',
        content: { 'application/gzip': { type: 'string', contentEncoding: 'binary' } },
      },
      404: runId('No such run, or not approved yet'),
    },
  },
  {
    method: 'get',
    path: '/v1/runs/:id/logs',
    repoLimited: true,
    role: 'viewer',
    summary: "The run's combined log from a byte offset",
    query: [{ name: 'from', description: 'Byte offset (default 0)', schema: { type: 'integer', minimum: 0 } }],
    responses: {
      200: {
        description: 'Log text',
        content: { 'text/plain': text },
        headers: { 'X-Next-Offset': 'The offset to ask for next', 'X-Run-Status': "The run's status" },
      },
      404: runId('No such run'),
    },
  },
  ...(['approve', 'reject', 'request-changes'] as const).map((decision): RouteDoc => ({
    method: 'post',
    path: `/v1/runs/:id/${decision}`,
    repoLimited: true,
    role: 'approver',
    summary: `${decision === 'request-changes' ? 'Send the run back to the agent with a comment (required)' : `${decision[0].toUpperCase()}${decision.slice(1)} a run awaiting approval`}; the token's name is recorded`,
    body: { required: decision === 'request-changes', content: decisionBody },
    responses: { 202: accepted, 404: runId('No such run'), 409: conflict('the run is not awaiting approval') },
  })),
  {
    method: 'put',
    path: '/v1/runs/:id/tasks',
    repoLimited: true,
    role: 'approver',
    summary:
      "Correct a `tasks: auto` plan's proposed tasks before approving them (ids, task texts, needs; the spec's checks, scope and agent stay)",
    body: { required: true, content: json(schema(TaskListCorrectionSchema, 'input')) },
    responses: {
      202: accepted,
      400: { description: 'Not a task list the plan can run, naming the field', content: json(ref('Error')) },
      404: runId('No such run'),
      409: conflict('the plan is not awaiting approval of proposed tasks'),
    },
  },
  {
    method: 'post',
    path: '/v1/runs/:id/cancel',
    repoLimited: true,
    role: 'submitter',
    summary: 'Cancel a run; its sandbox is torn down',
    body: { required: false, content: decisionBody },
    responses: { 202: accepted, 404: runId('No such run'), 409: conflict('the run has ended') },
  },
  {
    method: 'post',
    path: '/v1/runs/:id/budget',
    repoLimited: true,
    role: 'approver',
    summary:
      'Raise the spent model budget of a run awaiting_budget (docs/budgets.md): it goes on from its checkpoint; the raise is signed and in the proof',
    body: { required: true, content: json(schema(BudgetRaiseBodySchema, 'input')) },
    responses: {
      202: accepted,
      400: { description: 'No amount, or a bad one, naming the field', content: json(ref('Error')) },
      404: runId('No such run'),
      409: conflict('the run is not awaiting budget'),
    },
  },
  {
    method: 'post',
    path: '/v1/schedules',
    role: 'submitter',
    repoLimited: true,
    summary: 'Run a spec on a cron schedule (a Temporal Schedule)',
    body: { required: true, content: json(schema(ScheduleRequestSchema, 'input')) },
    responses: {
      201: { description: 'Created', content: json(schema(z.object({ id: z.string(), url: z.url() }))) },
      400: { description: 'A bad cron expression or spec', content: json(ref('Error')) },
      409: conflict('a schedule with that id exists'),
    },
  },
  {
    method: 'get',
    path: '/v1/schedules',
    role: 'viewer',
    summary: "Schedules; a repo-limited token sees its repos' schedules only",
    responses: {
      200: { description: 'The schedules', content: json(schema(z.object({ schedules: z.array(ScheduleSchema) }))) },
    },
  },
  {
    method: 'delete',
    path: '/v1/schedules/:id',
    role: 'submitter',
    repoLimited: true,
    summary: 'Delete a schedule',
    responses: { 204: { description: 'Deleted' }, 404: noSchedule },
  },
  ...(['trigger', 'pause', 'unpause'] as const).map((action): RouteDoc => ({
    method: 'post',
    path: `/v1/schedules/:id/${action}`,
    repoLimited: true,
    role: 'submitter',
    summary: SCHEDULE_ACTIONS[action],
    responses: { 202: scheduleAction, 404: noSchedule },
  })),
  {
    method: 'get',
    path: '/v1/fleet',
    role: 'viewer',
    summary: 'Workers polling, runs per status, queue backlog',
    responses: { 200: { description: 'The fleet', content: json(schema(FleetSchema)) } },
  },
  {
    method: 'get',
    path: '/v1/spend',
    role: 'viewer',
    summary:
      "Model spend the gateways metered (the spend ledger), summed per token, repo, UTC day or model, each with its per-model share, and the total; an admin sees everyone's, any other token only its own",
    query: [
      {
        name: 'by',
        description: 'token, repo, day (the default) or model',
        schema: { type: 'string', enum: [...SPEND_GROUPINGS] },
      },
    ],
    responses: {
      200: { description: 'The spend', content: json(schema(SpendSummarySchema)) },
      400: { description: '`by` is not token, repo, day or model', content: json(ref('Error')) },
    },
  },
  {
    method: 'get',
    path: '/v1/budgets',
    role: 'admin',
    summary: "The limits above a run: each token's and repo's budget, and the server's (NIGHTSHIFT_BUDGET)",
    responses: { 200: { description: 'The budgets', content: json(schema(BudgetsListingSchema)) } },
  },
  {
    method: 'put',
    path: '/v1/budgets/:kind/:name',
    role: 'admin',
    summary:
      'Set (or with null remove) the budget of a token or a repo (`kind`: token or repo); runs awaiting_budget are told, so a run stopped by a limit now raised goes on',
    body: { required: true, content: json(schema(BudgetBodySchema, 'input')) },
    responses: {
      200: { description: 'Changed', content: json(schema(BudgetChangedSchema)) },
      400: { description: 'A bad budget, naming the field `budget`: nothing changed', content: json(ref('Error')) },
      404: {
        description: 'No such kind, token (tokens.json) or repo (registered, or in the repos directory)',
        content: json(ref('Error')),
      },
    },
  },
  {
    method: 'get',
    path: '/v1/me',
    role: 'viewer',
    summary: "The token's name and role (the web page shows only what the role may do)",
    responses: {
      200: {
        description: 'Who the token is',
        content: json(
          schema(
            z.object({
              name: z.string(),
              role: z.enum(ROLES),
              repos: RepoGlobsSchema.optional().describe(
                'Set: the token is limited to these repos (globs over names in the repos dir)',
              ),
            }),
          ),
        ),
      },
    },
  },
  {
    method: 'get',
    path: '/v1/keys',
    role: 'viewer',
    summary:
      'Every key the server signs or signed with, each with its validity window (for `nightshift verify` and cosign)',
    responses: {
      200: {
        description: 'The keys, the one in use last',
        content: json(schema(z.object({ keys: z.array(PublicKeyEntrySchema) }))),
      },
    },
  },
  {
    method: 'get',
    path: '/v1/keys/allowed_signers',
    role: 'viewer',
    summary: "The keys as git's allowed_signers file (`git -c gpg.ssh.allowedSignersFile=… verify-commit`)",
    responses: { 200: { description: 'ssh-keygen(1) ALLOWED SIGNERS format', content: { 'text/plain': text } } },
  },
  {
    method: 'get',
    path: '/v1/proofs/log',
    role: 'viewer',
    summary: 'Every proof the server signed, in order, each naming the one before it (not for repo-limited tokens)',
    responses: {
      200: { description: 'The proof log', content: json(schema(z.object({ entries: z.array(ProofLogEntrySchema) }))) },
      403: { description: 'The token is limited to some repos', content: json(ref('Error')) },
    },
  },
  {
    method: 'get',
    path: '/v1/proofs/:digest',
    role: 'viewer',
    summary: 'A proof bundle in the proof log, by its sha256 (not for repo-limited tokens)',
    responses: {
      200: {
        description: 'proof.tar.gz',
        content: { 'application/gzip': { type: 'string', contentEncoding: 'binary' } },
      },
      404: { description: 'No such proof in the log', content: json(ref('Error')) },
    },
  },
  {
    method: 'post',
    path: '/v1/keys/rotate',
    role: 'admin',
    summary:
      "A new signing key; the old one's window closes and its private half is deleted (what it signed still verifies)",
    responses: {
      201: {
        description: 'The retired key and the new one',
        content: json(schema(z.object({ retired: PublicKeyEntrySchema, current: PublicKeyEntrySchema }))),
      },
    },
  },
  {
    method: 'get',
    path: '/v1/repos',
    role: 'viewer',
    summary:
      'Repos a spec may name: registered remotes and the local repos in the repos directory; a repo-limited token sees its repos only',
    responses: {
      200: {
        description: 'The repos (a credential by its NAME only, never its value)',
        content: json(schema(z.object({ repos: z.array(RepoListingSchema) }))),
      },
    },
  },
  {
    method: 'post',
    path: '/v1/repos',
    role: 'admin',
    summary:
      'Register a remote repo (https, http or ssh:// URL; the credential by the NAME of a server secret); answers its forge webhook URL and secret, this once',
    body: { required: true, content: json(schema(RemoteRepoInputSchema, 'input')) },
    responses: {
      201: { description: 'Registered', content: json(schema(RepoAddedSchema)) },
      400: {
        description:
          'A bad name or URL (a password in it, a transport helper), an unknown forge, or a name a local repo has',
        content: json(ref('Error')),
      },
      409: conflict('a repo or a forge of that name is registered'),
    },
  },
  {
    method: 'post',
    path: '/v1/forges/:name/webhook',
    summary:
      "A forge's webhook for a registered repo (docs/forges.md): no token, the body signed with the repo's webhook secret (X-Gitea-Signature or X-Hub-Signature-256). Issues labelled `nightshift` or commented `/nightshift` start runs; reviews and `/nightshift fix` comments decide them; an approver's `/nightshift budget +5` comment raises a spent budget; commit statuses are checks. For a registered forge's name (no repo of that name), an owner's webhook there signed with the forge's secret: only its merged pull requests count, in their campaigns (docs/campaigns.md)",
    headers: [
      {
        name: 'X-Gitea-Signature',
        description: 'Hex HMAC-SHA256 of the body with the webhook secret (or X-Hub-Signature-256: sha256=…)',
      },
      { name: 'X-Gitea-Event-Type', description: 'The event (or X-GitHub-Event)' },
    ],
    body: { required: true, content: json({ type: 'object' }) },
    responses: {
      200: {
        description:
          'Nothing to do: an event that drives no run, a review while the run works, or a delivery already received',
        content: json(schema(z.object({ ignored: z.string() }))),
      },
      202: {
        description: 'Accepted: the run it starts or decides, or the runs a status is for',
        content: json(
          schema(
            z.object({
              accepted: z.string().optional(),
              run: z.string().optional(),
              runs: z.array(z.string()).optional(),
            }),
          ),
        ),
      },
      400: { description: 'The body is not JSON', content: json(ref('Error')) },
      401: {
        description:
          "The signature is missing or does not match the repo's (or forge's) webhook secret: nothing starts",
        content: json(ref('Error')),
      },
      404: { description: 'No repo on a forge and no forge of that name is registered', content: json(ref('Error')) },
    },
  },
  {
    method: 'delete',
    path: '/v1/repos/:name',
    role: 'admin',
    summary: 'Unregister a remote repo (workers keep their mirrors until removed by hand)',
    responses: {
      204: { description: 'Removed' },
      404: { description: 'No registered repo of that name', content: json(ref('Error')) },
    },
  },
  {
    method: 'get',
    path: '/v1/forges',
    role: 'viewer',
    summary: "Registered forges: what a campaign's `repos:` selector lists repos on (a credential by its NAME only)",
    responses: {
      200: {
        description: 'The forges',
        content: json(schema(z.object({ forges: z.array(RegisteredForgeSchema) }))),
      },
    },
  },
  {
    method: 'post',
    path: '/v1/forges',
    role: 'admin',
    summary:
      "Register a forge for campaign selectors: its URL, the NAME of the server secret its workers' token is in, and the owners selectors may reach",
    body: { required: true, content: json(schema(RegisteredForgeSchema.omit({ addedAt: true }), 'input')) },
    responses: {
      201: {
        description: "Registered; its webhook's URL and secret, shown this once",
        content: json(schema(z.object({ forge: RegisteredForgeSchema, webhook: RepoAddedSchema.shape.webhook }))),
      },
      400: { description: 'A bad name, URL, credential or owner', content: json(ref('Error')) },
      409: conflict('a forge or a registered repo of that name exists'),
    },
  },
  {
    method: 'delete',
    path: '/v1/forges/:name',
    role: 'admin',
    summary: 'Unregister a forge (the repos its selectors registered stay registered)',
    responses: {
      204: { description: 'Removed' },
      404: { description: 'No registered forge of that name', content: json(ref('Error')) },
    },
  },
  {
    method: 'post',
    path: '/v1/campaigns',
    role: 'submitter',
    repoLimited: true,
    summary:
      'Start a campaign: a spec whose `repos:` lists the repos or selects them on a registered forge (`{forge, owner, match, has}`), with `concurrency:` and `approval.mode: each | batch`; each repo a run of its own',
    body: {
      required: true,
      content: {
        'text/markdown': { ...text, description: 'YAML front matter, the body is the task' },
        'application/yaml': text,
        'application/json': text,
      },
    },
    responses: {
      201: {
        description: 'Started',
        content: json(schema(z.object({ id: z.string(), url: z.url(), repos: z.number().int() }))),
      },
      400: { description: 'A bad campaign, naming the field (`repos.2`, `concurrency`…)', content: json(ref('Error')) },
    },
  },
  {
    method: 'get',
    path: '/v1/campaigns',
    role: 'viewer',
    summary: 'Campaigns, newest first (at most 100)',
    responses: { 200: { description: 'The campaigns', content: json({ type: 'object' }) } },
  },
  {
    method: 'get',
    path: '/v1/campaigns/:id',
    role: 'viewer',
    repoLimited: true,
    summary:
      "A campaign: its status, counts, each repo's run, state, branch, pull request, commit and proof, the counts over time, and `unattended`",
    responses: { 200: { description: 'The campaign', content: json({ type: 'object' }) }, 404: campaignId },
  },
  {
    method: 'get',
    path: '/v1/campaigns/:id/proof',
    role: 'viewer',
    repoLimited: true,
    summary:
      "The campaign's signed proof as it last ended: a DSSE envelope of an in-toto statement listing each repo's run, end state, final commit and run proof (`nightshift verify --campaign`)",
    responses: {
      200: { description: 'The DSSE envelope', content: json({ type: 'object' }) },
      404: { ...campaignId, description: 'No such campaign, or it has not ended yet' },
    },
  },
  {
    method: 'get',
    path: '/v1/campaigns/:id/events',
    role: 'viewer',
    repoLimited: true,
    summary:
      "The campaign's progress as Server-Sent Events (`repo`: a repo's entry changed; `campaign`: status and counts; `end` at an end status); resumes from Last-Event-ID",
    headers: [{ name: 'Last-Event-ID', description: 'Resume after this event' }],
    responses: {
      200: { description: 'An event stream', content: { 'text/event-stream': text } },
      404: campaignId,
      429: error(
        'Too many event streams open: for this token (NIGHTSHIFT_STREAMS_PER_TOKEN) or on the server (NIGHTSHIFT_STREAMS_TOTAL); the message names the cap',
      ),
    },
  },
  ...(
    [
      ['pause', 'submitter', 'Start no new runs (running ones go on)'],
      ['resume', 'submitter', 'Start runs again'],
      ['cancel', 'submitter', 'Cancel every run not ended; start none'],
      ['retry', 'submitter', 'Run the failed repos again, from scratch'],
      [
        'approve',
        'approver',
        'Approve every run awaiting approval (approval.mode: batch), each decision signed for its run',
      ],
      ['reject', 'approver', 'Reject every run awaiting approval (approval.mode: batch)'],
    ] as const
  ).map(([action, role, summary]): RouteDoc => ({
    method: 'post',
    path: `/v1/campaigns/:id/${action}`,
    role,
    repoLimited: true,
    summary,
    body: { required: false, content: decisionBody },
    responses: {
      202: { description: 'Accepted', content: json({ type: 'object' }) },
      404: campaignId,
      409: conflict('nothing to do'),
    },
  })),
];

/** express `/v1/runs/:id` → OpenAPI `/v1/runs/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:(\w+)/g, '{$1}');
}

function operation(route: RouteDoc): Record<string, unknown> {
  const params = [
    ...[...route.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: text })),
    ...(route.query ?? []).map((q) => ({
      name: q.name,
      in: 'query',
      required: false,
      description: q.description,
      schema: q.schema,
    })),
    ...(route.headers ?? []).map((h) => ({
      name: h.name,
      in: 'header',
      required: false,
      description: h.description,
      schema: text,
    })),
  ];
  const responses: Record<number, Response> = { ...route.responses };
  if (route.role) {
    responses[401] = error('No token, or an invalid one');
    // A route's own 429 (a cap it has) is one more reason beside the token limiter's.
    const tooMany = [route.responses[429]?.description, 'Too many invalid tokens from this address']
      .filter(Boolean)
      .join('; or ');
    responses[429] = {
      ...error(tooMany),
      headers: { 'Retry-After': 'After invalid tokens: seconds until it may try again' },
    };
    const why = [
      route.role !== 'viewer' && `the token's role is below ${route.role}`,
      route.repoLimited && 'the token is limited to other repos (`token add --repos`)',
    ]
      .filter(Boolean)
      .join(', or ');
    if (why) responses[403] = error(why[0].toUpperCase() + why.slice(1));
  }
  if (route.body) responses[413] = error('The body is larger than 512 KB');
  return {
    summary: route.summary,
    operationId: `${route.method}${route.path.replace(/[^A-Za-z0-9]+(\w)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    ...(route.role ? { security: [{ bearer: [] }], 'x-nightshift-role': route.role } : { security: [] }),
    ...(params.length ? { parameters: params } : {}),
    ...(route.body ? { requestBody: { required: route.body.required, content: mediaTypes(route.body.content) } } : {}),
    responses: Object.fromEntries(
      Object.entries(responses).map(([status, r]) => [
        status,
        {
          description: r.description,
          ...(r.content ? { content: mediaTypes(r.content) } : {}),
          ...(r.headers
            ? {
                headers: Object.fromEntries(
                  Object.entries(r.headers).map(([name, description]) => [name, { description, schema: text }]),
                ),
              }
            : {}),
        },
      ]),
    ),
  };
}

function mediaTypes(content: Record<string, JsonSchema>): Record<string, { schema: JsonSchema }> {
  return Object.fromEntries(Object.entries(content).map(([type, s]) => [type, { schema: s }]));
}

/** The OpenAPI 3.1 document of ROUTES, for GET /v1/openapi.json. */
export function openApiDocument(serverUrl: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) (paths[openApiPath(route.path)] ??= {})[route.method] = operation(route);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Nightshift',
      version: '1',
      description:
        'Queue coding specs for sandboxed agents; approve, reject or request changes; fetch signed proofs. Roles: viewer < submitter < approver < admin.',
    },
    servers: [{ url: serverUrl }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A token from `nightshift token add NAME --role ROLE`' },
      },
      schemas: { Error: schema(ErrorBodySchema) },
    },
  };
}
