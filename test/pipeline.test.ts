import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { unpackTarGz } from '../proof/tar';
import { openArtifactStore } from '../store/openArtifacts';
import { findTemporal } from '../temporal/cli';
import { STATUS_KEY } from '../workflows/searchAttributes';
import { gitIn, makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { dockerDriver } from './helpers/sandboxes';
import { modelAgent } from './helpers/model';
import { spec, VALUE_REPO } from './helpers/specs';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

function sandboxDirs(runId: string): string[] {
  const work = path.join(stack.config.home, 'work');
  if (!existsSync(work)) return [];
  return readdirSync(work).filter((w) => existsSync(path.join(work, w, runId)));
}

test('happy path: agent → scope → checks → review → approval → proof → branch in the repo', async () => {
  const repo = makeRepo(VALUE_REPO);
  const markdown = [
    '---',
    'title: Set the value to two',
    `repo: ${repo}`,
    'agent:',
    '  kind: command',
    '  command: ["sh", "-c", "echo working on: $(head -1 $NIGHTSHIFT_PROMPT_FILE); echo 2 > src/value.txt"]',
    'scope: { allow: ["src/**"] }',
    'checks:',
    '  - { name: value, run: "test $(cat src/value.txt) = 2" }',
    '---',
    'Make src/value.txt contain 2.',
  ].join('\n');
  const id = await stack.submit(markdown, 'text/markdown');
  const waiting = await stack.waitFor(id, ['awaiting_approval']);

  expect(waiting.iteration).toBe(1);
  expect(waiting.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
    'provision:passed',
    'agent:passed',
    'scope:passed',
    'checks:passed',
    'review:passed',
    'approval:running',
  ]);
  for (const s of waiting.stages.slice(0, 5)) expect(s.durationMs).toBeGreaterThanOrEqual(0);
  expect(waiting.checks).toEqual([expect.objectContaining({ name: 'value', passed: true, exitCode: 0 })]);
  expect(waiting.agent?.changedFiles).toEqual(['src/value.txt']);
  expect(waiting.review?.verdict).toBe('approve');
  // The workspace is released while a human decides.
  expect(sandboxDirs(id)).toEqual([]);

  const diff = await stack.api('GET', `/v1/runs/${id}/diff`);
  expect(diff.status).toBe(200);
  expect(diff.headers.get('content-type')).toMatch(/text\/x-diff/);
  expect(diff.text).toMatch(/^-1$/m);
  expect(diff.text).toMatch(/^\+2$/m);

  const logs = await stack.api('GET', `/v1/runs/${id}/logs`);
  expect(logs.text).toContain('working on: # Set the value to two');
  expect(logs.headers.get('x-run-status')).toBe('awaiting_approval');

  const approve = await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'ship it' } });
  expect(approve.status).toBe(202);
  const done = await stack.waitFor(id, ['succeeded']);
  expect(done.decisions).toEqual([expect.objectContaining({ kind: 'approve', comment: 'ship it', by: 'admin' })]);

  // The branch is in the source repo, one commit above main, with the agent's change.
  expect(gitIn(repo, 'rev-parse', done.branch).trim()).toBe(done.finalCommit);
  expect(gitIn(repo, 'show', `${done.branch}:src/value.txt`)).toBe('2\n');
  expect(gitIn(repo, 'rev-list', '--count', `main..${done.branch}`).trim()).toBe('1');
  expect(gitIn(repo, 'log', '-1', '--format=%B', done.branch)).toContain(`Nightshift-Run: ${id}`);
  expect(gitIn(repo, 'show', 'main:src/value.txt')).toBe('1\n');

  // The proof manifest names the stages, digests of real logs, and the approval.
  const store = openArtifactStore(stack.config);
  const manifest = JSON.parse((await unpackTarGz(await store.get(done.proofId!))).get('manifest.json')!.toString());
  expect(manifest).toMatchObject({
    runId: id,
    repo,
    branch: done.branch,
    baseCommit: done.baseCommit,
    finalCommit: done.finalCommit,
    iterations: 1,
    approval: { kind: 'approve', comment: 'ship it', by: 'admin' },
  });
  expect(manifest.specDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  const checkLog = (await store.get(manifest.checks[0].logDigest.slice(7))).toString();
  expect(checkLog).toContain('check value passed');
  expect(sandboxDirs(id)).toEqual([]);
});

test('a check’s JUnit report is counted into the run and signed into the proof; one that points outside the workspace is not read, nor removed', async () => {
  const report =
    '<?xml version="1.0"?><testsuites><testsuite name="a" tests="2" failures="0" errors="0" skipped="1"/><testsuite name="b" tests="3" failures="0" errors="0" skipped="0"/></testsuites>';
  // A host file the agent's links point at: the stale report removed before each check is never this one.
  const hostDir = tempDir('junit-victim');
  writeFileSync(path.join(hostDir, 'victim.xml'), report);
  const id = await stack.submit(
    spec(makeRepo(VALUE_REPO), `echo 2 > src/value.txt; ln -s ${hostDir} notes/reports`, {
      checks: [
        {
          name: 'unit',
          run: `mkdir -p /tmp/r && printf '%s' '${report}' > /tmp/r/junit.xml && cp /tmp/r/junit.xml notes/junit.xml`,
          junit: 'notes/junit.xml',
        },
        { name: 'sneaky', run: 'ln -sf /etc/passwd notes/escape.xml', junit: 'notes/escape.xml' },
        { name: 'linked', run: 'true', junit: 'notes/reports/victim.xml' },
      ],
    }),
  );
  const waiting = await stack.waitFor(id, ['awaiting_approval']);
  expect(waiting.checks[0].junit).toMatchObject({ tests: 5, failures: 0, errors: 0, skipped: 1 });
  expect(waiting.checks[1].junit).toBeUndefined();
  const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
  expect(log).toContain('[nightshift: JUnit notes/junit.xml: 5 tests, 0 failures, 0 errors, 1 skipped]');
  expect(log).toContain('[nightshift: the JUnit report notes/escape.xml is outside the workspace; not read]');
  expect(waiting.checks[2].junit).toBeUndefined();
  expect(readFileSync(path.join(hostDir, 'victim.xml'), 'utf8')).toBe(report);
  await stack.api('POST', `/v1/runs/${id}/approve`, {});
  const done = await stack.waitFor(id, ['succeeded']);
  const bundle = await unpackTarGz(await openArtifactStore(stack.config).get(done.proofId!));
  expect(bundle.get('junit/unit.xml')!.toString()).toBe(report);
  expect(JSON.parse(bundle.get('manifest.json')!.toString()).checks[0].junit).toMatchObject({
    tests: 5,
    failures: 0,
    errors: 0,
    skipped: 1,
  });
});

test('a check that fails every iteration ends the run failed, naming the check and its log', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = await stack.submit(
    spec(repo, 'echo 3 > src/value.txt; echo "$NIGHTSHIFT_FEEDBACK" > notes/feedback-$NIGHTSHIFT_ITERATION.txt', {
      checks: [{ name: 'value-is-two', run: 'echo "expected 2, got $(cat src/value.txt)"; exit 1' }],
    }),
  );
  const state = await stack.waitFor(id, ['failed']);
  expect(state.iteration).toBe(2);
  expect(state.failure?.stage).toBe('checks');
  expect(state.failure?.reason).toContain('value-is-two');
  expect(state.failure?.reason).toContain('expected 2, got 3');
  // Iteration 2 was told what failed in iteration 1.
  expect(state.feedback).toContain('Check "value-is-two"');
  expect(state.feedback).toContain('expected 2, got 3');
  expect(state.stages.filter((s) => s.stage === 'agent')).toHaveLength(2);
  expect(gitIn(repo, 'branch', '--list', state.branch).trim()).toBe('');
  expect(sandboxDirs(id)).toEqual([]);
});

test('an out-of-scope change is fed back to the agent, and the fixed iteration goes on', async () => {
  const repo = makeRepo(VALUE_REPO);
  // Iteration 1 also touches README.md (out of scope); iteration 2 reads the feedback and leaves it alone.
  const agent = `echo 2 > src/value.txt; if [ "$NIGHTSHIFT_ITERATION" = 1 ]; then echo changed >> README.md; else printf 'A tiny repo for Nightshift tests.\\n' > README.md; echo "$NIGHTSHIFT_FEEDBACK" > notes/feedback.txt; fi`;
  const id = await stack.submit(spec(repo, agent));
  const state = await stack.waitFor(id, ['awaiting_approval']);
  expect(state.iteration).toBe(2);
  expect(state.stages.find((s) => s.stage === 'scope')).toMatchObject({
    status: 'failed',
    iteration: 1,
    summary: 'out of scope: README.md',
  });
  expect(state.scopeViolations).toEqual([]);
  expect(state.feedback).toContain('README.md');
  const diff = await stack.api('GET', `/v1/runs/${id}/diff`);
  expect(diff.text).not.toContain('diff --git a/README.md');
  expect(diff.text).toContain('notes/feedback.txt');
  await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'not needed' } });
  await stack.waitFor(id, ['rejected']);
});

test('an out-of-scope change that persists fails the run at the scope stage', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = await stack.submit(
    spec(repo, 'echo 2 > src/value.txt; mkdir -p .github; echo x > .github/ci.yml', {
      scope: { allow: ['**'], deny: ['.github/**'] },
    }),
  );
  const state = await stack.waitFor(id, ['failed']);
  expect(state.failure?.stage).toBe('scope');
  expect(state.failure?.reason).toContain('.github/ci.yml');
  expect(state.iteration).toBe(2);
});

test('reject ends the run rejected and delivers nothing', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt'));
  await stack.waitFor(id, ['awaiting_approval']);
  expect((await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'wrong approach' } })).status).toBe(202);
  const state = await stack.waitFor(id, ['rejected']);
  expect(state.decisions).toEqual([expect.objectContaining({ kind: 'reject', comment: 'wrong approach' })]);
  expect(gitIn(repo, 'branch', '--list', state.branch).trim()).toBe('');
  expect(state.proofId).toBeUndefined();
});

test('request changes sends the comment to another agent iteration', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = await stack.submit(
    spec(
      repo,
      'echo 2 > src/value.txt; printf "%s" "$NIGHTSHIFT_FEEDBACK" > notes/iteration-$NIGHTSHIFT_ITERATION.txt',
    ),
  );
  await stack.waitFor(id, ['awaiting_approval']);
  const res = await stack.api('POST', `/v1/runs/${id}/request-changes`, {
    body: { comment: 'Please also add a note about rounding.' },
  });
  expect(res.status).toBe(202);
  // Wait for the second iteration to come back for approval.
  const deadline = Date.now() + 60_000;
  let state = await stack.state(id);
  while (!(state.iteration === 2 && state.status === 'awaiting_approval') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 300));
    state = await stack.state(id);
  }
  expect(state.iteration).toBe(2);
  expect(state.status).toBe('awaiting_approval');
  expect(state.decisions[0]).toMatchObject({
    kind: 'requestChanges',
    comment: 'Please also add a note about rounding.',
  });
  const diff = await stack.api('GET', `/v1/runs/${id}/diff`);
  expect(diff.text).toContain('notes/iteration-2.txt');
  expect(diff.text).toContain('Please also add a note about rounding.');
  await stack.api('POST', `/v1/runs/${id}/approve`, {});
  const done = await stack.waitFor(id, ['succeeded']);
  expect(gitIn(repo, 'show', `${done.branch}:notes/iteration-2.txt`)).toContain(
    'Please also add a note about rounding.',
  );
});

test('cancel during the agent stage ends the run cancelled and leaves no sandbox or process behind', async () => {
  const repo = makeRepo(VALUE_REPO);
  const marker = `${Math.floor(Math.random() * 1e6) + 1000}`;
  const id = await stack.submit(spec(repo, `echo started; sleep ${marker}`));
  // Until the agent's sleep runs (after its echo reaches the log: under load, not at once).
  const deadline = Date.now() + 60_000;
  let seen = '';
  while (Date.now() < deadline) {
    const logs = await stack.api('GET', `/v1/runs/${id}/logs`);
    seen = logs.text;
    if (seen.includes('started') && pgrep(`sleep ${marker}`)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect({
    sleeping: pgrep(`sleep ${marker}`) !== '',
    status: (await stack.state(id)).status,
    log: seen.slice(-400),
  }).toMatchObject({ sleeping: true });
  expect((await stack.api('POST', `/v1/runs/${id}/cancel`, {})).status).toBe(202);
  const state = await stack.waitFor(id, ['cancelled']);
  expect(state.stages.find((s) => s.stage === 'agent')?.summary).toBe('cancelled');
  expect(sandboxDirs(id)).toEqual([]);
  expect(pgrep(`sleep ${marker}`)).toBe('');
  expect((await stack.api('POST', `/v1/runs/${id}/cancel`, {})).status).toBe(409);
});

test('an agent that hangs is killed at sandbox.timeout: the run fails "agent timed out", no process or sandbox left', async () => {
  const marker = `${Math.floor(Math.random() * 1e6) + 3000}`;
  const id = await stack.submit(
    spec(makeRepo(VALUE_REPO), `sleep ${marker} & sleep ${marker}`, { sandbox: { timeout: '2s' } }),
  );
  const state = await stack.waitFor(id, ['failed']);
  expect(state.failure).toEqual({ stage: 'agent', reason: 'agent timed out after 2s' });
  expect(state.iteration).toBe(1);
  expect(sandboxDirs(id)).toEqual([]);
  expect(pgrep(`sleep ${marker}`)).toBe('');
});

test('no decision within approval.timeout ends the run timed_out', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt', { approval: { required: true, timeout: '2s' } }));
  const state = await stack.waitFor(id, ['timed_out']);
  expect(state.failure).toEqual({ stage: 'approval', reason: 'no decision within 2s' });
  expect(gitIn(repo, 'branch', '--list', state.branch).trim()).toBe('');
});

test('Temporal Web shows the run with its summary, and the Temporal CLI can approve it with a plain signal', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt'));
  await stack.waitFor(id, ['awaiting_approval']);
  const description = await stack.client.workflow.getHandle(id).describe();
  expect(await description.staticSummary()).toBe('Set the value to two');
  expect(await description.staticDetails()).toContain(`**repo** ${repo}`);
  expect(description.typedSearchAttributes.get(STATUS_KEY)).toBe('awaiting_approval');
  // Approving without the API, as README.md describes it: the `approve` signal, sent with the Temporal CLI.
  execFileSync(findTemporal()!, [
    'workflow',
    'signal',
    '--address',
    process.env.NIGHTSHIFT_TEST_TEMPORAL!,
    '--workflow-id',
    id,
    '--name',
    'approve',
    '--input',
    '{"comment":"ok from the CLI"}',
  ]);
  const done = await stack.waitFor(id, ['succeeded']);
  expect(done.decisions).toEqual([
    expect.objectContaining({ kind: 'approve', comment: 'ok from the CLI', by: 'temporal' }),
  ]);
});

test("the run's log shows each egress decision of the agent", async () => {
  const server = http.createServer((_req, res) => res.end('allowed host says hi\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  try {
    const repo = makeRepo(VALUE_REPO);
    const agent = `curl -s --noproxy '' -x "$HTTP_PROXY" http://127.0.0.1:${port}/; curl -s --noproxy '' -x "$HTTP_PROXY" http://blocked.test/; echo 2 > src/value.txt`;
    stack.adminAllows({ egressInternal: `127.0.0.1:${port}` });
    const id = await stack.submit(spec(repo, agent, { sandbox: { network: [`127.0.0.1:${port}`] } }));
    await stack.waitFor(id, ['awaiting_approval']);
    const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
    expect(log).toContain('allowed host says hi');
    expect(log).toContain(`[nightshift egress] allow GET 127.0.0.1:${port} (allowed by 127.0.0.1:${port})`);
    expect(log).toContain('[nightshift egress] deny GET blocked.test:80 (not in the allowlist)');
    await stack.api('POST', `/v1/runs/${id}/reject`, {});
  } finally {
    server.close();
  }
});

test('a run on the docker driver goes through every stage in a container, and leaves none behind', async () => {
  const server = http.createServer((_req, res) => res.end('allowed host says hi\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  try {
    const repo = makeRepo(VALUE_REPO);
    const agent = `echo "agent as $(id -u) in $(cat /proc/1/comm)"; curl -s --noproxy '' http://127.0.0.1:${port}/; echo 2 > src/value.txt`;
    stack.adminAllows({ egressInternal: `127.0.0.1:${port}` });
    const id = await stack.submit(spec(repo, agent, { sandbox: { driver: 'docker', network: [`127.0.0.1:${port}`] } }));
    const waiting = await stack.waitFor(id, ['awaiting_approval']);
    expect(waiting.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
      'provision:passed',
      'agent:passed',
      'scope:passed',
      'checks:passed',
      'review:passed',
      'approval:running',
    ]);
    const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
    // PID 1 is the container's `sleep`, not bwrap.
    expect(log).toContain('agent as 1000 in sleep');
    expect(log).toContain('allowed host says hi');
    expect(log).toContain(`[nightshift egress] allow GET 127.0.0.1:${port}`);
    const docker = dockerDriver().docker;
    expect(await docker.listContainers({ all: true, filters: { label: [`nightshift.run=${id}`] } })).toEqual([]);
    await stack.api('POST', `/v1/runs/${id}/approve`, {});
    const done = await stack.waitFor(id, ['succeeded']);
    expect(gitIn(repo, 'show', `${done.branch}:src/value.txt`)).toBe('2\n');
  } finally {
    server.close();
  }
});

test('a spec asking for a driver the worker lacks fails at provision, saying so', async () => {
  // A short wait for a worker offering it (the default minute covers a Temporal restart).
  const lacking = await startTestStack({
    env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock', NIGHTSHIFT_DRIVER_WAIT: '3s' },
  });
  try {
    const id = await lacking.submit(
      spec(makeRepo(VALUE_REPO), 'echo 2 > src/value.txt', { sandbox: { driver: 'docker' } }),
    );
    const state = await lacking.waitFor(id, ['failed']);
    expect(state.failure?.stage).toBe('provision');
    expect(state.failure?.reason).toMatch(/^no worker offers the docker sandbox driver \(the fleet offers: bwrap\)/);
  } finally {
    await lacking.stop();
  }
});

test('the agent reaches its model API only through the run’s gateway: the real key stays outside, tokens are counted, the budget ends the run (`onExceed: fail`)', async () => {
  const realKey = `sk-ant-real-${Date.now()}-never-inside`;
  const seen: { path: string; key: string | undefined }[] = [];
  const upstream = http.createServer((req, res) => {
    seen.push({ path: req.url!, key: req.headers['x-api-key'] as string | undefined });
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        type: 'message',
        content: [{ type: 'text', text: 'ok' }],
        usage: { input_tokens: 30, output_tokens: 20 },
      }),
    );
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const port = (upstream.address() as AddressInfo).port;
  writeFileSync(path.join(stack.config.home, 'secrets.env'), `ANTHROPIC_API_KEY=${realKey}\n`);
  try {
    const repo = makeRepo(VALUE_REPO);
    const call = `curl -s -w " http=%{http_code}\\n" "$ANTHROPIC_BASE_URL/v1/messages" -H "x-api-key: $ANTHROPIC_API_KEY" -d '{"model":"claude-sonnet-4-5","messages":[]}'`;
    const agent = `echo "key inside: $ANTHROPIC_API_KEY"; cat /proc/*/environ 2>/dev/null | tr "\\0" "\\n" | grep -c sk-ant-real; ${call}; ${call}; ${call}; echo 2 > src/value.txt`;
    const id = await submitWithModel(repo, agent, port, { iterations: 2, tokens: 60, onExceed: 'fail' });
    const state = await stack.waitFor(id, ['failed']);
    expect(state.failure).toEqual({ stage: 'agent', reason: 'nightshift: token budget of 60 exhausted (used 100)' });
    expect(state.modelUsage).toEqual({ requests: 2, inputTokens: 60, outputTokens: 40, costUsd: 0.00078 });
    // Two requests went upstream with the real key; the third never left the worker.
    expect(seen).toEqual([
      { path: '/v1/messages', key: realKey },
      { path: '/v1/messages', key: realKey },
    ]);
    const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
    expect(log).toContain('key inside: nightshift-gateway-placeholder');
    expect(log).toMatch(/^0$/m);
    expect(log.match(/\[nightshift model\] POST \/v1\/messages → 200, 30 in \/ 20 out tokens/g)).toHaveLength(2);
    expect(log).toContain(
      '[nightshift model] POST /v1/messages → 429, refused: nightshift: token budget of 60 exhausted (used 100)',
    );
    expect(log).not.toContain(realKey);
  } finally {
    upstream.close();
    rmSync(path.join(stack.config.home, 'secrets.env'), { force: true });
  }
});

test('a budget spent mid-iteration pauses the run (no sandbox held) until a raise through the API; it goes on from its checkpoint, the agent told why, and the proof records the raise', async () => {
  // A scripted model: 30 in / 20 out tokens an answer, $0.00039 at claude-sonnet-4-5's prices.
  const upstream = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ type: 'message', content: [], usage: { input_tokens: 30, output_tokens: 20 } }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const port = (upstream.address() as AddressInfo).port;
  writeFileSync(path.join(stack.config.home, 'secrets.env'), 'ANTHROPIC_API_KEY=sk-ant-budget\n');
  try {
    const call = `curl -s -o /dev/null "$ANTHROPIC_BASE_URL/v1/messages" -H "x-api-key: $ANTHROPIC_API_KEY" -d '{"model":"claude-sonnet-4-5","messages":[]}'`;
    // Its prompt into the log (the second iteration's says why it stopped); three calls, the third over the budget.
    const agent = `cat /nightshift/prompt.md; ${call}; ${call}; ${call}; echo 2 > src/value.txt`;
    const id = await submitWithModel(makeRepo(VALUE_REPO), agent, port, { iterations: 1, costUsd: 0.0005 });
    const waiting = await stack.waitFor(id, ['awaiting_budget', 'failed']);
    expect(waiting).toMatchObject({
      status: 'awaiting_budget',
      iteration: 1,
      budget: {
        stoppedBy: 'nightshift: cost budget of $0.0005 exhausted (used $0.000780)',
        limits: { costUsd: 0.0005 },
      },
    });
    // Checkpointed, and no sandbox held while it waits.
    expect(waiting.checkpoint?.iteration).toBe(1);
    const work = path.join(stack.config.home, 'work');
    expect(readdirSync(work).flatMap((w) => readdirSync(path.join(work, w)).filter((e) => e.includes(id)))).toEqual([]);
    // A bad raise changes nothing; nor does a decision meant for approval.
    const bad = await stack.api('POST', `/v1/runs/${id}/budget`, { body: { costUsd: -1 } });
    expect([bad.status, bad.body.error.message]).toEqual([400, 'costUsd: costUsd must be more than 0']);
    expect((await stack.api('POST', `/v1/runs/${id}/budget`, { body: { comment: 'more' } })).body.error.message).toBe(
      'body: give tokens, costUsd or both to add',
    );
    expect((await stack.api('POST', `/v1/runs/${id}/approve`, { body: {} })).status).toBe(409);
    const raised = await stack.api('POST', `/v1/runs/${id}/budget`, { body: { costUsd: 1, comment: 'go on' } });
    expect(raised.status).toBe(202);

    await stack.waitFor(id, ['awaiting_approval']);
    expect((await stack.api('POST', `/v1/runs/${id}/approve`, { body: {} })).status).toBe(202);
    const done = await stack.waitFor(id, ['succeeded', 'failed']);
    expect(done).toMatchObject({ status: 'succeeded', iteration: 2, budget: { limits: { costUsd: 1.0005 } } });
    const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
    expect(log).toContain("Your last iteration was stopped by the run's model budget, not by a problem in your work");
    expect(log).toContain('admin raised the budget (+$1): go on.');
    // The raise is in the proof: who, how much, signed by the API.
    const bundle = await unpackTarGz(await openArtifactStore(stack.config).get(done.proofId!));
    const decisions = JSON.parse(bundle.get('attestations/decisions.json')!.toString());
    const statement = JSON.parse(Buffer.from(decisions.payload, 'base64').toString());
    expect(statement.predicate.decisions).toMatchObject([
      { kind: 'raiseBudget', by: 'admin', comment: 'go on', raise: { costUsd: 1 }, channel: 'api', verified: true },
      { kind: 'approve', by: 'admin', channel: 'api', verified: true },
    ]);
  } finally {
    upstream.close();
    rmSync(path.join(stack.config.home, 'secrets.env'), { force: true });
  }
});

/** A run of the command agent `agent` whose model API is the scripted one on `port` (claude-sonnet-4-5's prices). */
async function submitWithModel(repo: string, agent: string, port: number, limits: object): Promise<string> {
  stack.adminAllows({ modelUpstream: `http://127.0.0.1:${port}` });
  return stack.submit(spec(repo, agent, { agent: modelAgent(port, agent), limits }));
}

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}
