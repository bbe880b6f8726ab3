import { makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

let stack: TestStack;
let repo: string;
beforeAll(async () => {
  stack = await startTestStack();
  repo = makeRepo(VALUE_REPO);
});
afterAll(async () => {
  await stack?.stop();
});

/** Runs started on this stack's task queue, as Temporal sees them. */
async function runCount(): Promise<number> {
  const { count } = await stack.client.workflow.count(
    `WorkflowType = 'specRun' AND TaskQueue = '${stack.config.taskQueue}'`,
  );
  return count;
}

describe('bad input gets a clear 4xx and starts nothing', () => {
  const cases: [string, () => string, string, number | undefined, RegExp][] = [
    ['bad YAML', () => `---\ntitle: x\nrepo: ${repo}\nagent: [unclosed\n---\ntask`, '', 4, /invalid YAML/],
    [
      'an unknown agent kind',
      () => `---\ntitle: x\nrepo: ${repo}\nagent:\n  kind: gpt-pilot\n---\ntask`,
      'agent.kind',
      5,
      /invalid option|expected one of/i,
    ],
    [
      'a missing repo',
      () => `---\ntitle: x\nagent: { kind: command, command: [x] }\n---\ntask`,
      'repo',
      undefined,
      /required/,
    ],
    [
      'an unknown field',
      () => `---\ntitle: x\nrepo: ${repo}\nagent: { kind: command, command: [x] }\ncheks: []\n---\ntask`,
      'cheks',
      5,
      /unknown field/,
    ],
    [
      'a bad duration',
      () =>
        `---\ntitle: x\nrepo: ${repo}\nagent: { kind: command, command: [x] }\napproval:\n  timeout: soon\n---\ntask`,
      'approval.timeout',
      6,
      /not a duration/,
    ],
    [
      'a repo that is not a git repository',
      () =>
        `---\ntitle: x\nrepo: ${stack.config.reposDir}/no-such-repo\nagent: { kind: command, command: [x] }\n---\ntask`,
      'repo',
      undefined,
      /not a git repository/,
    ],
    [
      'a malformed network entry',
      () =>
        `---\ntitle: x\nrepo: ${repo}\nagent: { kind: command, command: [x] }\nsandbox:\n  network: ["http://evil.test/"]\n---\ntask`,
      'sandbox.network.0',
      6,
      /not host\[:port\]/,
    ],
    [
      'a command agent without a command',
      () => `---\ntitle: x\nrepo: ${repo}\nagent: { kind: command }\n---\ntask`,
      'agent.command',
      undefined,
      /required/,
    ],
  ];
  test.each(cases)('%s → 400 naming the field and line', async (_name, text, field, line, message) => {
    const before = await runCount();
    const res = await stack.api('POST', '/v1/runs', { body: text(), contentType: 'text/markdown' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('bad_request');
    expect(res.body.error.message.split('\n')).toHaveLength(1);
    const issue = res.body.error.issues.find((i: { field: string }) => i.field === field);
    expect(issue).toBeDefined();
    if (line !== undefined) expect(issue.line).toBe(line);
    expect(issue.message).toMatch(message);
    expect(res.body.error.message).toContain(field || 'spec');
    expect(await runCount()).toBe(before);
  });

  test('a YAML spec and a JSON spec are accepted the same way', async () => {
    const yaml = `title: yaml spec\nrepo: ${repo}\nagent: { kind: command, command: ["true"] }\ntask: nothing\napproval: { timeout: 1s }\n`;
    const before = await runCount();
    const res = await stack.api('POST', '/v1/runs', { body: yaml, contentType: 'application/yaml' });
    expect(res.status).toBe(202);
    // Visibility lags a start (on PostgreSQL, noticeably): counted here, so later tests' "nothing starts" counts are
    // steady.
    for (let i = 0; i < 100 && (await runCount()) === before; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await runCount()).toBe(before + 1);
    expect(res.body).toMatchObject({ status: 'queued', url: `${stack.config.publicUrl}/v1/runs/${res.body.id}` });
    const bad = await stack.api('POST', '/v1/runs', {
      body: '{"title": "x", "repo": ',
      contentType: 'application/json',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/invalid JSON/);
  });
});

describe('tokens and roles', () => {
  test('no token or a wrong token → 401, and nothing starts', async () => {
    const before = await runCount();
    const none = await stack.api('POST', '/v1/runs', { body: spec(repo, 'true'), token: null });
    expect(none.status).toBe(401);
    expect(none.body.error.message).toMatch(/missing bearer token/);
    const wrong = await stack.api('GET', '/v1/runs', { token: 'ns_not-a-real-token' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.message).toBe('invalid token');
    expect(await runCount()).toBe(before);
  });

  test('healthz needs no token', async () => {
    const res = await stack.api('GET', '/healthz', { token: null });
    expect(res.status).toBe(200);
  });

  test('a viewer can read but not submit or approve (403)', async () => {
    const viewer = stack.tokens.create('phone', 'viewer');
    expect((await stack.api('GET', '/v1/runs', { token: viewer })).status).toBe(200);
    const submit = await stack.api('POST', '/v1/runs', { body: spec(repo, 'true'), token: viewer });
    expect(submit.status).toBe(403);
    expect(submit.body.error.message).toMatch(/viewer.*needs submitter/);
    const approve = await stack.api('POST', '/v1/runs/ns-000000000000/approve', { body: {}, token: viewer });
    expect(approve.status).toBe(403);
  });
});

describe('runs', () => {
  test('an unknown run → 404 on every route', async () => {
    for (const [method, route] of [
      ['GET', ''],
      ['GET', '/diff'],
      ['GET', '/logs'],
      ['POST', '/approve'],
      ['POST', '/cancel'],
    ]) {
      const res = await stack.api(method, `/v1/runs/ns-doesnotexist${route}`, method === 'POST' ? { body: {} } : {});
      expect([route, res.status]).toEqual([route, 404]);
      expect(res.body.error.message).toBe('no run with id ns-doesnotexist');
    }
  });

  test('approving a run that is not awaiting approval → 409; request-changes needs a comment', async () => {
    const id = await stack.submit(spec(repo, 'echo started; sleep 30'));
    await stack.waitFor(id, ['agent']);
    const res = await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'too early' } });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/is agent, not awaiting approval/);
    const changes = await stack.api('POST', `/v1/runs/${id}/request-changes`, { body: {} });
    expect(changes.status).toBe(400);
    const state = await stack.state(id);
    expect(state.decisions).toEqual([]);
    await stack.api('POST', `/v1/runs/${id}/cancel`, {});
    await stack.waitFor(id, ['cancelled']);
  });

  test('an Idempotency-Key makes a retried submit return the same run', async () => {
    const body = spec(repo, 'echo 2 > src/value.txt', { approval: { timeout: '1s' } });
    const headers = { 'idempotency-key': 'phone-retry-1' };
    const first = await stack.api('POST', '/v1/runs', { body, headers });
    const second = await stack.api('POST', '/v1/runs', { body, headers });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    const { count } = await stack.client.workflow.count(`WorkflowId = '${first.body.id}'`);
    expect(count).toBe(1);
  });

  test('the list is newest first and filters by status', async () => {
    const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt'));
    await stack.waitFor(id, ['awaiting_approval']);
    // Visibility is eventually consistent: give it a moment.
    let listed: { id: string; status: string }[] = [];
    for (let i = 0; i < 40 && !listed.some((r) => r.id === id); i++) {
      listed = (await stack.api('GET', '/v1/runs?status=awaiting_approval&limit=50')).body.runs;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(listed.find((r) => r.id === id)).toMatchObject({
      status: 'awaiting_approval',
      title: 'Set the value to two',
      repo,
    });
    expect(listed.every((r) => r.status === 'awaiting_approval')).toBe(true);
    const all = (await stack.api('GET', '/v1/runs?limit=100')).body.runs as { startedAt: string }[];
    const times = all.map((r) => r.startedAt);
    expect([...times].sort().reverse()).toEqual(times);
    expect((await stack.api('GET', '/v1/runs?status=bogus')).status).toBe(400);
    expect((await stack.api('GET', '/v1/runs?limit=0')).status).toBe(400);
    await stack.api('POST', `/v1/runs/${id}/reject`, { body: {} });
  });

  test('fleet shows this worker', async () => {
    const res = await stack.api('GET', '/v1/fleet');
    expect(res.status).toBe(200);
    expect(res.body.workers.length).toBeGreaterThanOrEqual(1);
    expect(res.body.runs).toHaveProperty('awaiting_approval');
  });
});
