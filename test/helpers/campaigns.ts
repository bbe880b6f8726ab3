// What campaign tests ask of a test stack: the campaign once it gets somewhere, and how many of its runs held a
// sandbox at once (from each run's Temporal history).
import type { CampaignState } from '../../contracts/campaign';
import { tsToMs } from '@temporalio/common/lib/time';
import type { TestStack } from './stack';

/** The campaign (`GET /v1/campaigns/:id`) once `ok` holds of it; an answer that is not the campaign is asked again. */
export async function campaignWhen(
  stack: TestStack,
  id: string,
  ok: (c: CampaignState) => boolean,
  timeoutMs = 240_000,
): Promise<CampaignState> {
  const deadline = Date.now() + timeoutMs;
  let seen: CampaignState | undefined;
  for (;;) {
    // A query may fail a moment while the campaign's workflow moves from a dead worker (503).
    const res = await stack.api('GET', `/v1/campaigns/${id}`);
    if (res.status === 200) seen = res.body as CampaignState;
    if (res.status === 200 && ok(seen!)) return seen!;
    if (Date.now() > deadline) {
      const last = seen && { status: seen.status, repos: seen.repos.map((r) => [r.runId, r.state, r.status]) };
      throw new Error(`campaign ${id} did not get there (now ${res.status}); last seen: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Most runs holding a sandbox at once, from their Temporal histories: each run holds one from the start of its
 * `claimWorkspace` (a slot taken on a worker) to the completion of the `teardownWorkspace` that gave it back.
 */
export async function mostAtOnce(stack: TestStack, runIds: string[]): Promise<number> {
  const held: [number, number][] = [];
  for (const id of runIds) {
    const before = held.length;
    const events = (await stack.client.workflow.getHandle(id).fetchHistory()).events ?? [];
    const activityOf = new Map<string, string>();
    let claimed: number | undefined;
    for (const e of events) {
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled) activityOf.set(String(e.eventId), scheduled.activityType?.name ?? '');
      const started = e.activityTaskStartedEventAttributes;
      if (started && activityOf.get(String(started.scheduledEventId)) === 'claimWorkspace')
        claimed ??= tsToMs(e.eventTime);
      const completed = e.activityTaskCompletedEventAttributes;
      if (
        completed &&
        claimed !== undefined &&
        activityOf.get(String(completed.scheduledEventId)) === 'teardownWorkspace'
      ) {
        held.push([claimed, tsToMs(e.eventTime)]);
        claimed = undefined;
      }
    }
    if (claimed !== undefined) held.push([claimed, Date.now()]); // still held
    if (held.length === before) throw new Error(`run ${id} never claimed a sandbox, by its history`);
  }
  return Math.max(0, ...held.map(([s]) => held.filter(([a, b]) => a <= s && s < b).length));
}
