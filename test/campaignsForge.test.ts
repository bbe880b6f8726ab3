// A campaign over a real Gitea (issue 25): a selector lists an owner's repos through Gitea's API, once, and registers
// what it matched; each repo is an ordinary run on a registered repo (its pull request the default); batch approval;
// the broken ones fail naming their check and turn green on a retry once fixed. Everything asserted through Gitea's
// own API and the runs' recorded stages.
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { campaignWhen, mostAtOnce } from './helpers/campaigns';
import { startGitea, type GiteaRepo, type GiteaServer, type GiteaUser } from './helpers/gitea';
import { startTestStack, type TestStack } from './helpers/stack';

let gitea: GiteaServer;
let stack: TestStack;
let acme: GiteaUser;
/** The forge's own webhook, as its registration answered it once. */
let forgeHook: { url: string; secret: string };
const repos = new Map<string, GiteaRepo>();
const BROKEN = ['svc-03', 'svc-07'];
/** No package.json: the selector's `has` leaves them out. */
const NOT_NODE = ['svc-11', 'svc-12'];
/** Its own .nightshift.yml judges it by its own check (and nothing else of the file counts). */
const OWN_CHECKS = 'svc-05';

beforeAll(async () => {
  gitea = await startGitea();
  acme = await gitea.createUser('acme');
  for (let i = 1; i <= 12; i++) {
    const name = `svc-${String(i).padStart(2, '0')}`;
    const files: Record<string, string> = {
      'src/value.txt': '1\n',
      'fixture.txt': BROKEN.includes(name) ? 'broken\n' : 'ok\n',
    };
    if (!NOT_NODE.includes(name)) files['package.json'] = `{"name": "${name}"}\n`;
    if (name === OWN_CHECKS)
      files['.nightshift.yml'] = 'checks:\n  - name: own\n    run: grep -qx 2 src/value.txt\nlimits: {iterations: 9}\n';
    repos.set(name, await gitea.createRepo(acme.name, name, { files }));
  }
  stack = await startTestStack();
  // The owner's token, where the admin keeps credentials: the workers' secrets.env. No spec names it.
  writeFileSync(path.join(stack.config.home, 'secrets.env'), `ACME_TOKEN=${acme.token}\n`);
  // The admin opens the owner to selectors.
  const added = await stack.api('POST', '/v1/forges', {
    body: { name: 'gitea', url: gitea.url, credential: 'ACME_TOKEN', owners: [acme.name] },
  });
  expect(added.status).toBe(201);
  forgeHook = added.body.webhook;
  expect(forgeHook.url).toMatch(/\/v1\/forges\/gitea\/webhook$/);
}, 300_000);

afterAll(async () => {
  await stack?.stop();
  await gitea?.stop();
});

const campaign = (selector: object) => ({
  title: 'Set every value to two',
  task: 'Make src/value.txt contain 2.',
  agent: { kind: 'command', command: ['sh', '-c', 'echo 2 > src/value.txt'] },
  scope: { allow: ['src/**'] },
  checks: [{ name: 'fixture', run: 'grep -qx 2 src/value.txt && grep -qx ok fixture.txt' }],
  limits: { iterations: 2 },
  approval: { required: true, mode: 'batch', timeout: '20m' },
  concurrency: 3,
  repos: { forge: 'gitea', owner: acme.name, match: 'svc-*', has: 'package.json', ...selector },
});

const pullsOf = async (name: string) =>
  (
    await gitea.api<{ number: number; head: { ref: string } }[]>('GET', `/repos/${acme.name}/${name}/pulls?state=all`)
  ).map((p) => p.head.ref);

test('bad selectors are refused naming the field; nothing is registered or started', async () => {
  const before = (await stack.api('GET', '/v1/repos')).body.repos.length;
  const campaigns = (await stack.api('GET', '/v1/campaigns')).body.campaigns.length;
  const cases: [object, string][] = [
    [{ forge: 'nowhere' }, 'invalid campaign: repos.forge: no forge named nowhere is registered'],
    [{ owner: 'someone-else' }, 'invalid campaign: repos.owner: forge gitea does not open someone-else to selectors'],
    [{ has: '../etc/passwd' }, 'invalid campaign: repos.has: must be a plain relative path'],
    [{ match: 'nothing-*' }, 'invalid campaign: repos: the selector matched no repo'],
  ];
  for (const [selector, message] of cases) {
    const res = await stack.api('POST', '/v1/campaigns', { body: campaign(selector) });
    expect([res.status, res.body.error.message.slice(0, message.length)]).toEqual([400, message]);
  }
  // A repo named as the forge would take its webhook's URL: refused, nothing registered.
  const shadow = await stack.api('POST', '/v1/repos', {
    body: { name: 'gitea', url: `${gitea.url}/${acme.name}/svc-01.git`, forge: 'gitea', credential: 'ACME_TOKEN' },
  });
  expect([shadow.status, shadow.body.error.message]).toEqual([
    409,
    "name gitea is a registered forge's (their webhooks share the name); pick another",
  ]);
  // The forge's credential is no spec's secret either.
  const asked = await stack.api('POST', '/v1/campaigns', { body: { ...campaign({}), secrets: ['ACME_TOKEN'] } });
  expect(asked.status).toBe(400);
  expect((await stack.api('GET', '/v1/repos')).body.repos.length).toBe(before);
  expect((await stack.api('GET', '/v1/campaigns')).body.campaigns.length).toBe(campaigns);
}, 120_000);

test('a selector over 12 repos matches 10; concurrency 3; 8 pass, 2 fail naming their check; batch approval opens 8 pull requests; retried once fixed, the campaign succeeds', async () => {
  const started = await stack.api('POST', '/v1/campaigns', { body: campaign({}) });
  expect(started.status).toBe(201);
  expect(started.body.repos).toBe(10);
  const { id } = started.body;
  const selected = [...repos.keys()].filter((n) => !NOT_NODE.includes(n));
  const waiting = await campaignWhen(
    stack,
    id,
    (c) => c.counts.awaiting_approval === 8 && c.counts.failed === 2,
    420_000,
  );
  // Resolved once, recorded: each selected repo registered under its owner's name.
  expect(waiting.selector).toMatchObject({
    forge: 'gitea',
    owner: acme.name,
    match: 'svc-*',
    has: 'package.json',
    repos: selected.map((n) => `${acme.name}.${n}`),
  });
  expect(waiting.repos.map((r) => r.repo)).toEqual(selected.map((n) => `${acme.name}.${n}`));
  const failed = waiting.repos.filter((r) => r.state === 'failed');
  expect(failed.map((r) => r.repo)).toEqual(BROKEN.map((n) => `${acme.name}.${n}`));
  for (const r of failed) expect(r.reason).toMatch(/^checks: Check "fixture"/);
  expect(waiting.repos.find((r) => r.repo.endsWith(OWN_CHECKS))!.overrides).toEqual(['checks']);

  const approved = await stack.api('POST', `/v1/campaigns/${id}/approve`, { body: { comment: 'the green ones' } });
  expect([approved.status, approved.body.runs.length]).toEqual([202, 8]);
  const partial = await campaignWhen(stack, id, (c) => c.status === 'partial', 300_000);
  expect(partial.counts).toMatchObject({ succeeded: 8, failed: 2 });
  // One pull request for each green repo, on Gitea, from its run's branch; none for the broken ones.
  for (const r of partial.repos) {
    const name = r.repo.slice(acme.name.length + 1);
    expect([name, await pullsOf(name)]).toEqual([name, r.state === 'succeeded' ? [r.branch] : []]);
    if (r.state === 'succeeded') expect(r.pullRequest?.url).toContain(`/${acme.name}/${name}/pulls/`);
  }
  expect(
    await mostAtOnce(
      stack,
      partial.repos.map((r) => r.runId),
    ),
  ).toBeLessThanOrEqual(3);

  // The fixture fixed on Gitea: a retry runs the two from scratch, and the campaign succeeds.
  for (const name of BROKEN) await gitea.push(repos.get(name)!, 'main', { 'fixture.txt': 'ok\n' });
  expect((await stack.api('POST', `/v1/campaigns/${id}/retry`, { body: {} })).status).toBe(202);
  await campaignWhen(stack, id, (c) => c.counts.awaiting_approval === 2, 300_000);
  expect((await stack.api('POST', `/v1/campaigns/${id}/approve`, { body: {} })).status).toBe(202);
  const done = await campaignWhen(stack, id, (c) => c.status === 'succeeded', 300_000);
  for (const r of done.repos) expect(await pullsOf(r.repo.slice(acme.name.length + 1))).toEqual([r.branch]);

  // The owner's one webhook on Gitea, signed with the forge's secret: a person merges a pull request there, and the
  // campaign counts that repo merged (it stays succeeded, open for its merges).
  await gitea.api('POST', '/user/hooks', {
    token: acme.token,
    body: {
      type: 'gitea',
      active: true,
      events: ['pull_request'],
      config: { url: `${stack.apiUrl}/v1/forges/gitea/webhook`, content_type: 'json', secret: forgeHook.secret },
    },
  });
  const first = done.repos[0];
  await gitea.api(
    'POST',
    `/repos/${acme.name}/${first.repo.slice(acme.name.length + 1)}/pulls/${first.pullRequest!.number}/merge`,
    {
      token: acme.token,
      body: { Do: 'merge' },
    },
  );
  const merged = await campaignWhen(stack, id, (c) => c.counts.merged === 1, 60_000);
  expect(merged.status).toBe('succeeded');
  expect(merged.repos[0].merged).toMatchObject({ by: `gitea:${acme.name}` });
  expect(merged.repos.filter((r) => r.merged)).toHaveLength(1);
  // Unsigned, or signed by the forge for an owner it does not open: nothing counts.
  const forged = JSON.stringify({
    action: 'closed',
    number: done.repos[1].pullRequest!.number,
    pull_request: { number: done.repos[1].pullRequest!.number, merged: true, head: { ref: done.repos[1].branch } },
    repository: { name: done.repos[1].repo.slice(acme.name.length + 1), owner: { login: 'someone-else' } },
    sender: { login: acme.name },
  });
  const deliver = (event: string, body: string, signature?: string) =>
    fetch(`${stack.apiUrl}/v1/forges/gitea/webhook`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-gitea-event-type': event,
        'x-gitea-signature': signature ?? createHmac('sha256', forgeHook.secret).update(body).digest('hex'),
      },
      body,
    });
  const ignored = async (res: Response) => [res.status, ((await res.json()) as { ignored?: string }).ignored];
  expect((await deliver('pull_request', forged, '0'.repeat(64))).status).toBe(401);
  expect(await ignored(await deliver('pull_request', forged))).toEqual([
    200,
    'forge gitea does not open someone-else to selectors',
  ]);
  // Signed by the forge for an opened owner's registered repo, an issue labelled nightshift starts nothing: the
  // forge's webhook counts merges only (issues come through a repo's own webhook).
  const labelled = JSON.stringify({
    action: 'labeled',
    issue: { number: 1, title: 'Do it', body: 'Make it so.' },
    label: { name: 'nightshift' },
    repository: { name: 'svc-01', owner: { login: acme.name } },
    sender: { login: acme.name },
  });
  const askedAt = new Date().toISOString();
  expect(await ignored(await deliver('issues', labelled))).toEqual([
    200,
    "forge gitea's webhook reports merged pull requests only",
  ]);
  // No forge event was started for any of acme's repos (other test files share this Temporal server).
  const forgeEventRepos: string[] = [];
  const query = `WorkflowType = 'forgeEvent' AND StartTime >= '${askedAt}'`;
  for await (const wf of stack.client.workflow.list({ query })) {
    const { events } = await stack.client.workflow.getHandle(wf.workflowId).fetchHistory();
    const [input] = events![0].workflowExecutionStartedEventAttributes!.input!.payloads!;
    forgeEventRepos.push((JSON.parse(Buffer.from(input.data!).toString()) as { repo: string }).repo);
  }
  expect(forgeEventRepos.filter((r) => r === 'gitea' || r.startsWith(`${acme.name}.`))).toEqual([]);
  expect((await stack.api('GET', `/v1/campaigns/${id}`)).body.counts.merged).toBe(1);
  expect(
    await mostAtOnce(
      stack,
      done.repos.map((r) => r.runId),
    ),
  ).toBeLessThanOrEqual(3);
}, 900_000);
