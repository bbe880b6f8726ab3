import type { Request, Response } from 'express';
import type { CampaignState, CampaignStatus } from '../contracts/campaign';
import { Pollers } from './pollers';
import { fingerprint, lastEventIdOf, streamPolls, type Feed } from './sse';

/** The statuses a campaign's stream ends at (a retry of a partial or failed one starts it again: a new stream). */
export const CAMPAIGN_END_STATUSES: readonly CampaignStatus[] = ['succeeded', 'partial', 'failed', 'cancelled'];

/**
 * Where a client is in a campaign's stream, spelled out by every event's id as a run's stream does:
 * `<campaign events so far>-<fingerprint of the campaign as last sent>`, with `-end` on the `end` event's.
 */
interface Cursor {
  seq: number;
  fingerprint: string;
  ended: boolean;
}

const EVENT_ID = /^(\d{1,9})-([0-9a-f]{12})(-end)?$/;
const formatId = (c: Cursor) => `${c.seq}-${c.fingerprint}${c.ended ? '-end' : ''}`;

/** What the stream tells: the status, the counts and each repo's entry (not the burndown or the decisions). */
const campaignFingerprint = (c: CampaignState) => fingerprint(c, () => [c.status, c.counts, c.repos]);

/** The pollers of campaigns: each poll queries the campaign (`load`: no access check, cancelled by `stopped`). */
export const campaignPollers = (load: (id: string, stopped: AbortSignal) => Promise<CampaignState>) =>
  new Pollers<CampaignState>((id, stopped) => load(id, stopped));

/**
 * GET /v1/campaigns/:id/events: the campaign's progress as Server-Sent Events, from the client's last event on. Each
 * change is a `repo` event per repo whose entry changed, then a `campaign` event (status and counts) whose id covers
 * them; `end` once the campaign is at an end status. `authorize` is the 404 the client's token gets for it, if any.
 */
export async function streamCampaignEvents(
  req: Request,
  res: Response,
  deps: { id: string; authorize: () => Promise<void>; pollers: Pollers<CampaignState> },
): Promise<void> {
  const m = lastEventIdOf(req, EVENT_ID, '3-0123456789ab');
  let cursor: Cursor = m
    ? { seq: Number(m[1]), fingerprint: m[2], ended: m[3] !== undefined }
    : { seq: 0, fingerprint: '0'.repeat(12), ended: false };
  await deps.authorize();
  // Each repo's entry as this client last had it: none on a resume, so every repo is sent again once.
  const sentRepos = new Map<string, string>();
  const feed: Feed<CampaignState> = {
    async opening() {
      // 204 tells a client (EventSource included) to stop reconnecting: it has seen the end.
      if (!cursor.ended) return true;
      res.status(204).end();
      return false;
    },
    async round(campaign, send) {
      const print = campaignFingerprint(campaign);
      if (print !== cursor.fingerprint) {
        // The repo events carry the previous id: a client gone among them is sent them again.
        for (const repo of campaign.repos) {
          const entry = JSON.stringify(repo);
          if (sentRepos.get(repo.runId) === entry) continue;
          await send(formatId(cursor), 'repo', repo);
          sentRepos.set(repo.runId, entry);
        }
        cursor = { ...cursor, seq: cursor.seq + 1, fingerprint: print };
        const { status, counts, updatedAt } = campaign;
        await send(formatId(cursor), 'campaign', { id: campaign.id, status, counts, updatedAt });
      }
      if (!CAMPAIGN_END_STATUSES.includes(campaign.status)) return false;
      cursor = { ...cursor, ended: true };
      await send(formatId(cursor), 'end', { status: campaign.status, counts: campaign.counts });
      return true;
    },
  };
  await streamPolls(res, deps.pollers, deps.id, feed);
}
