// What campaign tests ask of a test stack: the campaign once it gets somewhere, and how many of its runs held a
// sandbox at once (from each run's recorded stages).
import type { CampaignState } from '../../contracts/campaign';
import type { RunState } from '../../contracts/run';
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

/** Most runs holding a sandbox at once: from each run's provision to the end of its last stage before approval. */
export async function mostAtOnce(stack: TestStack, runIds: string[]): Promise<number> {
  const held: [number, number][] = [];
  for (const id of runIds) {
    const run = (await stack.api('GET', `/v1/runs/${id}`)).body as RunState;
    // The sandbox is torn down before the approval; what comes after (rebase, proof, delivery) needs none.
    const approval = run.stages.findIndex((s) => s.stage === 'approval');
    const sandboxed = approval < 0 ? run.stages : run.stages.slice(0, approval);
    held.push([Date.parse(sandboxed[0].startedAt), Math.max(...sandboxed.map((s) => Date.parse(s.endedAt!)))]);
  }
  return Math.max(...held.map(([s]) => held.filter(([a, b]) => a <= s && s < b).length));
}
