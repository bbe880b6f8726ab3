import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ForgeEventInput, ForgeEvent } from '../contracts/forge';
import type { Config } from '../config';
import { RegisteredForges, type RegisteredForge } from '../config/forges';
import { RemoteRepos } from '../config/remotes';
import { deliveryId, readForgeEvent, signatureValid } from '../forges/webhook';
import type { forgeEvent } from '../workflows/forgeEvent';
import type { RunState } from '../contracts/run';
import { campaignMergedSignal, forgeStatusSignal, stateQuery } from '../workflows/messages';
import { SPEC_RUN_WORKFLOW } from '../workflows/names';
import { ApiError } from './errors';
import { bodyText } from './runs';

/**
 * POST /v1/forges/:name/webhook: a forge's webhook for a registered repo, or a registered forge's own (an owner's
 * webhook there, which reports merges only). No token: the delivery is signed with that repo's or forge's webhook
 * secret (Gitea's and GitHub's HMAC). A replayed delivery starts nothing twice (its Temporal workflow id is made from
 * its payload). Who may start or decide is checked by a worker, with the repo's credential.
 */
export function forgesRouter(deps: { client: Client; config: Config; logger: Logger }): Router {
  const router = Router();
  const remotes = new RemoteRepos(deps.config.home);
  const forges = new RegisteredForges(deps.config.home);
  router.post('/:name/webhook', async (req, res) => {
    const name = req.params.name;
    const remote = remotes.get(name);
    const forge = remote ? undefined : forges.get(name);
    if (forge) {
      const { payload } = signedDelivery(req, forges.webhookSecret(name), `forge ${name}`);
      const told = await forgeDelivery(
        deps.client,
        forge,
        remotes,
        readForgeEvent((h) => req.get(h), payload),
        payload,
      );
      res.status('campaign' in told ? 202 : 200).json(told);
      return;
    }
    if (!remote || remote.forge === 'none')
      throw new ApiError('not_found', `no repository or forge ${JSON.stringify(name.slice(0, 64))} is registered`);
    const header = (h: string) => req.get(h);
    const { body, payload } = signedDelivery(req, remotes.webhookSecret(name), name);
    // Gitea's "redeliver" sends the same payload under a new delivery id: a delivery is known by its payload.
    const delivery = digest(name, body);
    const event = readForgeEvent(header, payload);
    if ('ignored' in event) {
      res.json({ ignored: event.ignored });
      return;
    }
    if (event.kind === 'merged') {
      const told = await tellCampaignOfMerge(deps.client, name, { ...event, user: `${remote.forge}:${event.user}` });
      res.status('campaign' in told ? 202 : 200).json(told);
      return;
    }
    if (event.kind === 'status') {
      const runs = await runsWhere(deps.client, name, `NightshiftHead = '${event.sha}'`, 'running');
      await Promise.all(
        runs.map((id) =>
          deps.client.workflow.getHandle(id).signal(forgeStatusSignal, {
            sha: event.sha,
            context: event.context,
            state: event.state,
            description: event.description,
            ...(event.url ? { url: event.url } : {}),
          }),
        ),
      );
      res
        .status(runs.length ? 202 : 200)
        .json(runs.length ? { runs } : { ignored: `no run awaits ${event.sha.slice(0, 12)}` });
      return;
    }
    // A review decides a run awaiting approval; a budget comment raises one awaiting budget.
    const awaits = event.kind === 'review' ? 'approval' : 'budget';
    const run = event.kind === 'issue' ? undefined : await awaitingRun(deps.client, name, event.pr, awaits);
    if (event.kind !== 'issue' && !run) {
      res.json({ ignored: `no run of ${name} awaits ${awaits} on pull request #${event.pr}` });
      return;
    }
    const input: ForgeEventInput = {
      repo: name,
      event,
      newRunId: newRunId(name, event, delivery),
      ...(run ? { run } : {}),
    };
    const workflowId = `forge-${delivery}`;
    try {
      await deps.client.workflow.start<typeof forgeEvent>('forgeEvent', {
        taskQueue: deps.config.taskQueue,
        workflowId,
        args: [input],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        staticSummary: `${event.kind} on ${name} by ${event.user}`,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      res.json({ ignored: `this delivery was already received (${deliveryId(header) ?? delivery})` });
      return;
    }
    deps.logger.info(
      { repo: name, delivery: deliveryId(header), kind: event.kind, workflowId },
      'forge event accepted',
    );
    res
      .status(202)
      .json({ accepted: workflowId, ...(event.kind === 'issue' ? { run: input.newRunId } : { run: run!.id }) });
  });
  return router;
}

/** The delivery's body and JSON, once its signature is that of `secret` (401 otherwise; 400 for a body not JSON). */
function signedDelivery(req: Request, secret: string | undefined, whose: string): { body: string; payload: unknown } {
  const body = bodyText(req);
  if (!secret || !signatureValid(body, secret, (h) => req.get(h)))
    throw new ApiError('unauthorized', `the delivery's signature does not match the webhook secret of ${whose}`);
  try {
    return { body, payload: JSON.parse(body) };
  } catch {
    throw new ApiError('bad_request', "the delivery is not JSON (set the webhook's content type to application/json)");
  }
}

const ForgePayloadRepoSchema = z.object({
  repository: z.object({ name: z.string(), owner: z.object({ login: z.string() }) }),
});

/**
 * A delivery of a registered forge's own webhook (an owner's on the forge, covering all its repos): a merged pull
 * request of a repo the forge opens to selectors and that is registered from under its URL is told to its campaign.
 * Nothing else is acted on: issues, comments, reviews and statuses come through a repo's own webhook (repo add).
 */
async function forgeDelivery(
  client: Client,
  forge: RegisteredForge,
  remotes: RemoteRepos,
  event: ForgeEvent | { ignored: string },
  payload: unknown,
): Promise<{ run: string; campaign: string } | { ignored: string }> {
  if ('ignored' in event) return event;
  if (event.kind !== 'merged') return { ignored: `forge ${forge.name}'s webhook reports merged pull requests only` };
  const parsed = ForgePayloadRepoSchema.safeParse(payload);
  if (!parsed.success) return { ignored: 'the delivery names no repository' };
  const { name, owner } = parsed.data.repository;
  if (!forge.owners.some((o) => o.toLowerCase() === owner.login.toLowerCase()))
    return { ignored: `forge ${forge.name} does not open ${owner.login.slice(0, 64)} to selectors` };
  // The repo a selector (or an admin) registered from under the forge's URL: cloned from there, it is that repo.
  const url = `${forge.url}/${owner.login}/${name}.git`.toLowerCase();
  const repo = remotes.list().find((r) => r.forge === forge.kind && r.url.toLowerCase() === url);
  if (!repo)
    return { ignored: `no registered repo is ${owner.login.slice(0, 64)}/${name.slice(0, 100)} of ${forge.name}` };
  return tellCampaignOfMerge(client, repo.name, { ...event, user: `${forge.kind}:${event.user}` });
}

function digest(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}

/** A label starts one run per issue, however often it is set again; each `/nightshift` comment starts its own. */
function newRunId(repo: string, event: ForgeEvent, delivery: string): string {
  return `ns-${(event.kind === 'issue' && event.trigger === 'label' ? digest(repo, 'issue', event.issue) : delivery).slice(0, 12)}`;
}

/** The runs of `repo` that match `condition`: the running ones, or all (a merge comes after its run ended). */
async function runsWhere(client: Client, repo: string, condition: string, which: 'running' | 'all'): Promise<string[]> {
  const running = which === 'running' ? ` AND ExecutionStatus = 'Running'` : '';
  const query = `WorkflowType = '${SPEC_RUN_WORKFLOW}'${running} AND NightshiftRepo = '${repo}' AND ${condition}`;
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query, pageSize: 10 })) ids.push(wf.workflowId);
  return ids;
}

/**
 * The running run behind pull request `pr`, if it awaits `what` now (a review, or a raise, at any other time decides
 * nothing).
 */
async function awaitingRun(
  client: Client,
  repo: string,
  pr: number,
  what: 'approval' | 'budget',
): Promise<{ id: string; iteration: number } | undefined> {
  for (const id of await runsWhere(client, repo, `NightshiftPullRequest = '${pr}'`, 'running')) {
    const state = await runState(client, id);
    if (state.status === `awaiting_${what}`) return { id, iteration: state.iteration };
  }
  return undefined;
}

const runState = (client: Client, id: string): Promise<RunState> =>
  client.withDeadline(Date.now() + 10_000, () => client.workflow.getHandle(id).query(stateQuery));

/**
 * A merged pull request, told to the campaign of the run of `repo` that opened it (its state names the pull request
 * and its branch). A pull request no run opened, or a run of no campaign, changes nothing.
 */
async function tellCampaignOfMerge(
  client: Client,
  repo: string,
  merge: Extract<ForgeEvent, { kind: 'merged' }>,
): Promise<{ run: string; campaign: string } | { ignored: string }> {
  for (const id of await runsWhere(client, repo, `NightshiftPullRequest = '${merge.pr}'`, 'all')) {
    const state = await runState(client, id);
    if (state.pullRequest?.number !== merge.pr || state.branch !== merge.branch) continue;
    if (!state.campaign) return { ignored: `run ${id} of pull request #${merge.pr} belongs to no campaign` };
    const { commit } = merge;
    try {
      await client.workflow.getHandle(state.campaign.id).signal(campaignMergedSignal, {
        runId: id,
        pullRequest: merge.pr,
        at: new Date().toISOString(),
        by: merge.user,
        ...(commit ? { commit } : {}),
      });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      return { ignored: `campaign ${state.campaign.id} has ended: it counts no more merges` };
    }
    return { run: id, campaign: state.campaign.id };
  }
  return { ignored: `no run of ${repo} opened pull request #${merge.pr} (from ${merge.branch.slice(0, 100)})` };
}
