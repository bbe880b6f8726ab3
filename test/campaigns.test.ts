// Campaigns end to end (issue 25): one spec over many local repos through the API, each repo a real run (bwrap, git,
// the command agent), never more than `concurrency` holding a sandbox, batch approval, retry, cancel.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCli } from './helpers/cli';
import { campaignWhen as whenCampaign, mostAtOnce } from './helpers/campaigns';
import { openSse, readUntil } from './helpers/sse';
import { gitIn, makeRepo, tempDir, useTestStack } from './helpers/stack';
import type { CampaignState } from '../contracts/campaign';
import { sha256, signStatement, type DsseEnvelope } from '../proof/bundle';
import type { CampaignPredicate } from '../proof/campaign';
import { ensureSigningKey } from '../proof/keys';
import type { RunState } from '../contracts/run';

const made = useTestStack({ 'README.md': 'campaigns\n' });

/** A repo whose check passes only when its fixture says `ok`: the agent may not touch the fixture (scope src/**). */
const repoWith = (fixture: 'ok' | 'broken') => makeRepo({ 'src/value.txt': '1\n', 'fixture.txt': `${fixture}\n` });

const campaign = (repos: string[], extra: object = {}) => ({
  title: 'Set every value to two',
  task: 'Make src/value.txt contain 2.',
  agent: { kind: 'command', command: ['sh', '-c', 'echo 2 > src/value.txt'] },
  scope: { allow: ['src/**'] },
  checks: [{ name: 'fixture', run: 'grep -qx 2 src/value.txt && grep -qx ok fixture.txt' }],
  limits: { iterations: 1 },
  repos,
  ...extra,
});

const campaignWhen = (id: string, ok: (c: CampaignState) => boolean, timeoutMs?: number) =>
  whenCampaign(made.stack, id, ok, timeoutMs);

test('six repos, concurrency 2, batch approval: two fail their check, the campaign is partial; retried once fixed, it succeeds', async () => {
  const { stack } = made;
  const repos = ['ok', 'ok', 'broken', 'ok', 'broken', 'ok'].map((f) => repoWith(f as 'ok' | 'broken'));
  const started = await stack.api('POST', '/v1/campaigns', {
    body: campaign(repos, { concurrency: 2, approval: { required: true, mode: 'batch' } }),
  });
  expect(started.status).toBe(201);
  const { id } = started.body;
  // Its progress as a stream, read once the campaign is partial (what came meanwhile is buffered).
  const eventsUrl = `${stack.apiUrl}/v1/campaigns/${id}/events`;
  const stream = await openSse(eventsUrl, { token: stack.token });
  expect(stream.status).toBe(200);
  const waiting = await campaignWhen(id, (c) => c.counts.awaiting_approval === 4 && c.counts.failed === 2);
  expect(waiting.status).toBe('running');
  expect(waiting.repos.map((r) => r.state)).toEqual([
    'awaiting_approval',
    'awaiting_approval',
    'failed',
    'awaiting_approval',
    'failed',
    'awaiting_approval',
  ]);
  expect(waiting.repos[2].reason).toMatch(/^checks: Check "fixture"/);
  // Each repo's run is a run of its own in the API, linked to its campaign.
  const run = (await stack.api('GET', `/v1/runs/${waiting.repos[0].runId}`)).body as RunState;
  expect(run).toMatchObject({ campaign: { id }, status: 'awaiting_approval', repo: repos[0] });
  const approved = await stack.api('POST', `/v1/campaigns/${id}/approve`, { body: { comment: 'all green ones' } });
  expect(approved.status).toBe(202);
  expect(approved.body.runs).toHaveLength(4);
  // Ended partial, it is signed as it stands: its proof is what `proofId` names.
  const partial = await campaignWhen(id, (c) => c.status === 'partial' && c.proofId !== undefined);
  expect(partial.counts).toMatchObject({ succeeded: 4, failed: 2, running: 0, queued: 0 });
  for (const r of partial.repos.filter((x) => x.state === 'succeeded')) {
    const repo = repos[partial.repos.indexOf(r)];
    expect(gitIn(repo, 'show', `${r.branch}:src/value.txt`)).toBe('2\n');
    expect(r.proofId).toMatch(/^[0-9a-f]{64}$/);
  }
  // Each decision is its run's, verified; the campaign lists the runs it decided.
  const decided = (await stack.api('GET', `/v1/runs/${partial.repos[0].runId}`)).body;
  expect(decided.decisions).toMatchObject([
    { kind: 'approve', by: 'admin', verified: true, comment: 'all green ones' },
  ]);
  expect(partial.decisions).toMatchObject([{ kind: 'approve', runs: approved.body.runs }]);
  expect(
    await mostAtOnce(
      made.stack,
      partial.repos.map((r) => r.runId),
    ),
  ).toBeLessThanOrEqual(2);

  // The stream: every repo first, then each change (its repos, then the counts), and `end` at the partial campaign.
  const events = await readUntil(stream, (e) => e.event === 'end', 30_000);
  const data = (event: string) => events.filter((e) => e.event === event).map((e) => JSON.parse(e.data));
  expect(events.slice(0, 7).map((e) => e.event)).toEqual([...Array(6).fill('repo'), 'campaign']);
  const counts = data('campaign').map((c) => c.counts);
  expect(counts[0]).toMatchObject({ succeeded: 0, failed: 0, merged: 0 });
  expect(counts.at(-1)).toEqual(partial.counts);
  // The counts only move towards the end: no repo is ever back from an end.
  for (const [before, after] of counts.slice(1).map((c, i) => [counts[i], c]))
    expect(after.succeeded + after.failed).toBeGreaterThanOrEqual(before.succeeded + before.failed);
  expect(
    data('repo')
      .filter((r) => r.runId === partial.repos[2].runId)
      .map((r) => r.state),
  ).toEqual(expect.arrayContaining(['running', 'failed']));
  expect(data('end')).toEqual([{ status: 'partial', counts: partial.counts }]);
  expect(events.at(-1)!.id).toMatch(/^\d+-[0-9a-f]{12}-end$/);
  expect(await stream.next(5_000)).toBeUndefined();
  // A client that saw the end is told so (204: EventSource stops reconnecting); an unknown campaign is a 404.
  expect((await openSse(eventsUrl, { token: stack.token, lastEventId: events.at(-1)!.id })).status).toBe(204);
  const unknown = await openSse(`${stack.apiUrl}/v1/campaigns/nc-000000000000/events`, { token: stack.token });
  expect([unknown.status, JSON.parse(unknown.errorText!).error.message]).toEqual([
    404,
    'no campaign with id nc-000000000000',
  ]);

  // The fixture fixed on the two repos' base: a retry runs them from scratch, and the campaign succeeds.
  for (const i of [2, 4]) {
    writeFileSync(path.join(repos[i], 'fixture.txt'), 'ok\n');
    gitIn(repos[i], 'commit', '--quiet', '-am', 'fix the fixture');
  }
  expect((await stack.api('POST', `/v1/campaigns/${id}/retry`, { body: {} })).status).toBe(202);
  await campaignWhen(id, (c) => c.counts.awaiting_approval === 2);
  expect((await stack.api('POST', `/v1/campaigns/${id}/approve`, { body: {} })).status).toBe(202);
  // Ended again, signed again.
  const done = await campaignWhen(id, (c) => c.status === 'succeeded' && c.proofId !== partial.proofId);
  expect(done.repos.map((r) => r.attempts)).toEqual([1, 1, 2, 1, 2, 1]);
  expect((done as CampaignState & { unattended: number }).unattended).toBeCloseTo(4 / 6);
  expect(done.history.at(-1)!.counts.succeeded).toBe(6);
  // Nothing more to retry.
  expect((await stack.api('POST', `/v1/campaigns/${id}/retry`, { body: {} })).status).toBe(409);
  const status = await runCli(['campaign', 'status', id], stack.env);
  expect(status.code).toBe(0);
  expect(status.stdout).toContain('status     succeeded (6 succeeded; 67% unattended); concurrency 2, approval batch');
  expect(status.stdout).toMatch(new RegExp(`succeeded +#2  ${done.repos[2].runId}`));
  await campaignProofVerifies(done);
}, 600_000);

/**
 * The campaign's proof, downloaded, verifies with each run proof it names (a line per repo); changed after signing it
 * is refused, and so is one signed with the server's own key that lists a commit or a run proof not its run's.
 */
async function campaignProofVerifies(done: CampaignState) {
  const { stack } = made;
  const file = path.join(tempDir('campaign-proof'), `${done.id}-proof.json`);
  expect(await runCli(['campaign', 'proof', done.id, '-o', file], stack.env)).toMatchObject({ code: 0 });
  expect(sha256(readFileSync(file))).toBe(done.proofId);
  const lines = [
    `verified: campaign ${done.id} (Set every value to two), succeeded, 6 repos, signed by `,
    ...done.repos.map((r) => `succeeded #${r.attempts}  ${r.runId}  commit ${r.commit}  proof sha256:${r.proofId} ok`),
  ];
  for (const args of [
    ['verify', file],
    ['verify', '--campaign', done.id],
  ]) {
    const verified = await runCli(args, stack.env);
    expect(verified).toMatchObject({ code: 0, stderr: '' });
    const printed = verified.stdout.trim().split('\n');
    expect(printed).toHaveLength(7);
    lines.forEach((line, i) => expect(printed[i].replace(/ +/g, ' ')).toContain(line.replace(/ +/g, ' ')));
  }
  const refused = async (edit: (p: CampaignPredicate) => void, resign: boolean) => {
    const dsse = JSON.parse(readFileSync(file, 'utf8')) as DsseEnvelope;
    const statement = JSON.parse(Buffer.from(dsse.payload, 'base64').toString('utf8'));
    edit(statement.predicate);
    const changed = resign
      ? signStatement(statement, ensureSigningKey(stack.config.home))
      : JSON.stringify({ ...dsse, payload: Buffer.from(JSON.stringify(statement)).toString('base64') });
    writeFileSync(`${file}.changed`, changed);
    const result = await runCli(['verify', `${file}.changed`], stack.env);
    expect(result.code).toBe(1);
    return result.stderr;
  };
  const [first, second] = done.repos;
  expect(await refused((p) => (p.repos[2].state = 'failed'), false)).toContain(
    'verification failed: the campaign proof: the signature does not match the statement',
  );
  expect(await refused((p) => (p.repos[0].proof = { sha256: second.proofId! }), false)).toContain(
    'the signature does not match the statement',
  );
  expect(await refused((p) => (p.repos[0].proof = { sha256: second.proofId! }), true)).toContain(
    `verification failed: repo ${first.repo}: its run proof is of run ${second.runId}, not ${first.runId}`,
  );
  expect(await refused((p) => (p.repos[1].commit = first.commit), true)).toContain(
    `verification failed: repo ${second.repo}: its run proof ends on commit ${second.commit}, the campaign lists ${first.commit}`,
  );
}

test('bad campaigns are refused naming the field, and nothing starts', async () => {
  const { stack } = made;
  const repo = repoWith('ok');
  const before = (await stack.api('GET', '/v1/campaigns')).body.campaigns.length;
  const cases: [object, string][] = [
    [campaign([]), 'invalid campaign: repos: a campaign names at least one repo'],
    [campaign([repo, '/nowhere/at/all']), 'invalid campaign: repos.1: '],
    [campaign([repo, repo]), `invalid campaign: repos.1: "${repo}" is listed twice (repos.0)`],
    [campaign([repo], { concurrency: 0 }), 'invalid campaign: concurrency: at least 1'],
    [campaign([repo], { repo }), 'invalid campaign: repo: a campaign names its repos in `repos:`'],
    [campaign([repo], { approval: { mode: 'all' } }), 'invalid campaign: approval.mode: '],
    [campaign({ forge: 'nowhere', owner: 'acme' } as never), 'invalid campaign: repos.forge: no forge named nowhere'],
  ];
  for (const [body, message] of cases) {
    const res = await stack.api('POST', '/v1/campaigns', { body });
    expect([res.status, res.body.error.message.slice(0, message.length)]).toEqual([400, message]);
  }
  expect((await stack.api('GET', '/v1/campaigns')).body.campaigns.length).toBe(before);
});

test('a campaign cancelled mid-run: every run cancelled, none started after, no sandbox left', async () => {
  const { stack } = made;
  const repos = [repoWith('ok'), repoWith('ok'), repoWith('ok')];
  const slow = { kind: 'command', command: ['sh', '-c', 'sleep 60; echo 2 > src/value.txt'] };
  const { id } = (await stack.api('POST', '/v1/campaigns', { body: campaign(repos, { agent: slow, concurrency: 1 }) }))
    .body;
  const running = await campaignWhen(id, (c) => c.repos[0].status === 'agent', 120_000);
  expect(running.counts).toMatchObject({ running: 1, queued: 2 });
  expect((await stack.api('POST', `/v1/campaigns/${id}/cancel`, { body: { comment: 'wrong change' } })).status).toBe(
    202,
  );
  const done = await campaignWhen(id, (c) => c.status === 'cancelled', 120_000);
  expect(done.repos.map((r) => [r.state, r.attempts])).toEqual([
    ['cancelled', 1],
    ['cancelled', 0],
    ['cancelled', 0],
  ]);
  expect(done.decisions).toMatchObject([{ kind: 'cancel', by: 'admin', comment: 'wrong change' }]);
  const work = path.join(stack.config.home, 'work');
  const left = readdirSync(work).flatMap((w) => readdirSync(path.join(work, w)).filter((e) => e.includes(id)));
  expect(left).toEqual([]);
}, 300_000);
