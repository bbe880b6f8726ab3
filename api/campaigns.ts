import { ApplicationFailure, WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import type { Config } from '../config';
import { campaignSelector, prepareCampaign } from '../admission/prepareCampaign';
import { registerSelected, unregister } from '../admission/selectedRepos';
import { signDecision } from '../proof/decisions';
import { ensureSigningKey } from '../proof/keys';
import type { CampaignState, ResolvedSelector, SelectedRepo } from '../contracts/campaign';
import type { RunState } from '../contracts/run';
import type { ArtifactStore } from '../store/artifacts';
import {
  approveSignal,
  batchDecisionSignal,
  campaignStateQuery,
  cancelCampaignSignal,
  pauseCampaignSignal,
  rejectSignal,
  resumeCampaignSignal,
  retryCampaignSignal,
  stateQuery,
} from '../workflows/messages';
import { CAMPAIGN_RUN_WORKFLOW } from '../workflows/names';
import { repoSelector } from '../workflows/repoSelector';
import { REPO_KEY, STATUS_KEY, TITLE_KEY } from '../workflows/searchAttributes';
import { campaignPollers, streamCampaignEvents } from './campaignEvents';
import { ApiError } from './errors';
import { principalOf, repoAllowed, requireRepo, requireRole } from './auth';
import type { Principal } from './tokens';
import { bodyText, commentOf } from './runs';
import type { StreamSlots } from './streamSlots';

/** How long a person waits for a worker to list the selector's repos on the forge. */
const SELECTOR_TIMEOUT = '2m';

/** A campaign as `GET /v1/campaigns/:id` answers: its state, and the share of its ended repos no person attended. */
export type CampaignView = CampaignState & { unattended: number | null };

/** `POST /v1/campaigns`, and the campaign's own routes (docs/campaigns.md). */
export function campaignsRouter(client: Client, config: Config, store: ArtifactStore, streams: StreamSlots): Router {
  const router = Router();
  const load = (req: Request) => loadCampaign(client, config, req);
  const pollers = campaignPollers((id, stopped) =>
    client.withAbortSignal(stopped, () => client.workflow.getHandle(id).query(campaignStateQuery)),
  );

  router.post('/', requireRole('submitter'), async (req, res) => {
    const principal = principalOf(req);
    const id = `nc-${randomBytes(6).toString('hex')}`;
    const [text, contentType] = [bodyText(req), req.get('content-type')];
    const asked = campaignSelector(text, contentType, config);
    const selected = asked && (await selectRepos(client, config, asked));
    try {
      const input = prepareCampaign(text, contentType, principal.name, config, id, selected?.resolved);
      input.repos.forEach((r, i) => requireRepo(principal, r.repo, config.reposDir, `repos.${i} (${r.name})`));
      await client.workflow.start(CAMPAIGN_RUN_WORKFLOW, {
        taskQueue: config.taskQueue,
        workflowId: id,
        args: [input],
        typedSearchAttributes: [
          { key: STATUS_KEY, value: 'running' },
          { key: TITLE_KEY, value: input.run.spec.title },
          { key: REPO_KEY, value: `${input.repos.length} repos` },
        ],
        staticSummary: `campaign: ${input.run.spec.title} (${input.repos.length} repos)`,
      });
      res.status(201).json({ id, url: `${config.publicUrl}/v1/campaigns/${id}`, repos: input.repos.length });
    } catch (err) {
      // A campaign that did not start leaves no registration behind.
      if (selected) unregister(config.home, selected.added);
      throw err;
    }
  });

  router.get('/', requireRole('viewer'), async (req, res) => {
    const campaigns = [];
    for await (const wf of client.workflow.list({ query: `WorkflowType = '${CAMPAIGN_RUN_WORKFLOW}'` })) {
      if (campaigns.length >= 100) break;
      campaigns.push({
        id: wf.workflowId,
        title: wf.typedSearchAttributes.get(TITLE_KEY),
        status: wf.typedSearchAttributes.get(STATUS_KEY),
        startedAt: wf.startTime.toISOString(),
      });
    }
    res.json({ campaigns });
  });

  router.get('/:id', requireRole('viewer'), async (req, res) => {
    res.json(viewOf(await load(req)));
  });

  // Its signed proof as it last ended (docs/campaigns.md, "The campaign's proof"): a DSSE envelope.
  router.get('/:id/proof', requireRole('viewer'), async (req, res) => {
    const state = await load(req);
    if (!state.proofId)
      throw new ApiError(
        'not_found',
        `campaign ${state.id} has no proof yet (status ${state.status}); its proof is signed when it ends`,
      );
    res
      .type('application/json')
      .attachment(`${state.id}-proof.json`)
      .send(await store.get(state.proofId));
  });

  router.get('/:id/events', requireRole('viewer'), async (req, res) => {
    await streams.serve(principalOf(req).name, () =>
      streamCampaignEvents(req, res, {
        id: String(req.params.id),
        authorize: async () => void (await load(req)),
        pollers,
      }),
    );
  });

  // Who asked is sent with each (the campaign records a cancel's and a retry's).
  const actions = [
    ['pause', pauseCampaignSignal],
    ['resume', resumeCampaignSignal],
    ['cancel', cancelCampaignSignal],
    ['retry', retryCampaignSignal],
  ] as const;
  for (const [route, signal] of actions)
    router.post(`/:id/${route}`, requireRole('submitter'), async (req, res) => {
      const state = await load(req);
      if (route === 'retry' && !state.repos.some((r) => r.state === 'failed'))
        throw new ApiError('conflict', `campaign ${state.id} has no failed repo to retry`);
      await client.workflow.getHandle(state.id).signal(signal, { comment: commentOf(req), by: principalOf(req).name });
      res.status(202).json({ id: state.id });
    });
  for (const kind of ['approve', 'reject'] as const)
    router.post(`/:id/${kind}`, requireRole('approver'), async (req, res) =>
      batchDecision(client, config, await load(req), req, res, kind),
    );
  return router;
}

/**
 * The repos a selector names, resolved once by a worker (it holds the forge's credential) and registered: what the
 * campaign records, and the registrations made for it.
 */
async function selectRepos(
  client: Client,
  config: Config,
  { selector, forge }: NonNullable<ReturnType<typeof campaignSelector>>,
): Promise<{ resolved: ResolvedSelector; added: string[] }> {
  let found: SelectedRepo[];
  try {
    found = await client.workflow.execute(repoSelector, {
      taskQueue: config.taskQueue,
      workflowId: `nightshift-repo-selector-${randomBytes(6).toString('hex')}`,
      args: [{ ...selector, max: config.campaignMaxRepos }],
      workflowExecutionTimeout: SELECTOR_TIMEOUT,
    });
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause: Error | undefined = err.cause?.cause instanceof Error ? err.cause.cause : err.cause;
    const reason = (cause?.message ?? err.message).split('\n')[0];
    // The forge's refusal of the selector is the campaign's fault; its silence, or no worker, is the server's.
    if (cause instanceof ApplicationFailure && cause.nonRetryable)
      throw new ApiError('bad_request', `invalid campaign: repos: ${reason}`);
    throw new ApiError('unavailable', `cannot resolve the selector on forge ${forge.name}: ${reason}`);
  }
  const { names, added } = registerSelected(config.home, config.reposDir, forge, selector.owner, found);
  return { resolved: { ...selector, resolvedAt: new Date().toISOString(), repos: names }, added };
}

/** The campaign with the share of its ended repos that needed no person beyond the approval. */
function viewOf(state: CampaignState): CampaignView {
  const ended = state.repos.filter((r) => ['succeeded', 'failed', 'cancelled'].includes(r.state));
  const unattended = ended.filter((r) => r.attempts === 1 && !r.requestedChanges).length;
  return { ...state, unattended: ended.length ? unattended / ended.length : null };
}

/** The campaign the route names, if the token may see it (a repo-limited token: every repo of it is one of its). */
async function loadCampaign(client: Client, config: Config, req: Request): Promise<CampaignState> {
  const id = String(req.params.id);
  if (!/^nc-[0-9a-f]{12}$/.test(id)) throw new ApiError('not_found', `no campaign with id ${id.slice(0, 100)}`);
  let state: CampaignState;
  try {
    state = await client.workflow.getHandle(id).query(campaignStateQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new ApiError('not_found', `no campaign with id ${id}`);
    // Its workflow is there but no worker answered (none running, or moving it off a dead one): try again.
    throw new ApiError('unavailable', `campaign ${id}: no worker answered for its state; is a worker running?`);
  }
  // A repo-limited token sees a campaign only when every repo of it is one of its repos.
  const principal = principalOf(req);
  if (!state.repos.every((r) => repoAllowed(principal, r.repo, config.reposDir)))
    throw new ApiError('not_found', `no campaign with id ${id}`);
  return state;
}

/** One decision for every run of the campaign awaiting approval: each signed for its run, listed in the record. */
async function batchDecision(
  client: Client,
  config: Config,
  state: CampaignState,
  req: Request,
  res: Response,
  kind: 'approve' | 'reject',
): Promise<void> {
  const principal: Principal = principalOf(req);
  const comment = commentOf(req);
  if (state.approvalMode !== 'batch')
    throw new ApiError('conflict', `campaign ${state.id} decides each run on its own (approval.mode: each)`);
  const waiting = state.repos.filter((r) => r.state === 'awaiting_approval').map((r) => r.runId);
  if (!waiting.length) throw new ApiError('conflict', `no run of campaign ${state.id} awaits approval`);
  const key = ensureSigningKey(config.home);
  for (const runId of waiting) {
    const run: RunState = await client.workflow.getHandle(runId).query(stateQuery);
    const sig = signDecision(key, runId, { kind, by: principal.name, comment, iteration: run.iteration });
    await client.workflow
      .getHandle(runId)
      .signal(kind === 'approve' ? approveSignal : rejectSignal, { comment, by: principal.name, sig });
  }
  await client.workflow
    .getHandle(state.id)
    .signal(batchDecisionSignal, { kind, runs: waiting, comment, by: principal.name });
  res.status(202).json({ id: state.id, runs: waiting });
}
