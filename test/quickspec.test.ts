import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { runCli } from './helpers/cli';
import { makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { startedSpec as startedSpecOf, VALUE_REPO, VALUE_SETTINGS } from './helpers/specs';

// A run from a repo, a title and a task (spec/quick.ts): the API's defaults and quick runs, and `nightshift run`,
// against a real API, worker, Temporal and git repos.

let stack: TestStack;
/** Repos by name, relative to the repos dir (as a person names them). */
let configured: string;
let bare: string;
beforeAll(async () => {
  stack = await startTestStack();
  configured = path.basename(makeRepo({ ...VALUE_REPO, '.nightshift.yml': VALUE_SETTINGS }));
  bare = path.basename(makeRepo(VALUE_REPO));
});
afterAll(async () => {
  await stack?.stop();
});

const startedSpec = (id: string) => startedSpecOf(stack.client, id);
const defaultsOf = (name: string, token?: string) =>
  stack.api('GET', `/v1/repos/${encodeURIComponent(name)}/defaults`, { token });

test("GET /v1/repos/:name/defaults: the repo's .nightshift.yml, else the server's spec-defaults.yml, else built-in", async () => {
  const repo = await defaultsOf(configured);
  expect(repo.status).toBe(200);
  expect(repo.body.source).toBe('.nightshift.yml');
  expect(parse(repo.body.yaml)).toEqual({ repo: configured, ...parse(VALUE_SETTINGS) });

  expect((await defaultsOf(bare)).body).toEqual({
    source: 'built-in',
    yaml: `repo: ${bare}\nagent:\n  kind: claude-code\n`,
  });
  writeFileSync(stack.config.specDefaultsFile, 'agent: { kind: codex }\nlimits: { iterations: 4 }\n');
  try {
    const server = await defaultsOf(bare);
    expect(server.body.source).toBe('server');
    expect(parse(server.body.yaml)).toEqual({ repo: bare, agent: { kind: 'codex' }, limits: { iterations: 4 } });
    // The repo's own file wins over the server's.
    expect((await defaultsOf(configured)).body.source).toBe('.nightshift.yml');
  } finally {
    rmSync(stack.config.specDefaultsFile);
  }
});

test('a broken .nightshift.yml, a repo that is not one, a token limited to other repos: one-line 4xx', async () => {
  const broken = path.basename(makeRepo({ ...VALUE_REPO, '.nightshift.yml': 'agent: { kind: command\n' }));
  const res = await defaultsOf(broken);
  expect(res.status).toBe(400);
  expect(res.body.error.message).toMatch(
    new RegExp(`^repo ${broken}: \\.nightshift\\.yml: spec at line \\d: invalid YAML: [^\\n]+$`),
  );
  const quick = await stack.api('POST', '/v1/runs/quick', { body: { repo: broken, task: 'anything' } });
  expect([quick.status, quick.body.error.message]).toEqual([400, res.body.error.message]);

  const missing = await defaultsOf('no-such-repo');
  expect([missing.status, missing.body.error.message]).toEqual([
    404,
    `"no-such-repo" is not a git repository in the server's repos directory`,
  ]);
  expect((await defaultsOf('../../etc')).status).toBe(404);

  const limited = stack.tokens.create('quick-limited', 'submitter', [bare]);
  expect((await defaultsOf(bare, limited)).status).toBe(200);
  const refused = await defaultsOf(configured, limited);
  expect([refused.status, refused.body.error.message]).toEqual([
    403,
    `token "quick-limited" is limited to repos ${bare}; repo ${configured} is not in them`,
  ]);
  const submitted = await stack.api('POST', '/v1/runs/quick', {
    token: limited,
    body: { repo: configured, task: 'not yours' },
  });
  expect(submitted.status).toBe(403);
});

test("POST /v1/runs/quick runs with the repo's settings and the typed title and task; overrides replace fields", async () => {
  const res = await stack.api('POST', '/v1/runs/quick', {
    body: { repo: configured, task: 'Make the value two.\nIt is one now.' },
  });
  expect(res.status).toBe(202);
  const done = await stack.waitFor(res.body.id, ['awaiting_approval']);
  // The check came from .nightshift.yml, and it passed on the agent's work (also from there).
  expect(done.checks.map((c) => [c.name, c.passed])).toEqual([['value', true]]);
  expect(done.title).toBe('Make the value two.');
  const spec = await startedSpec(res.body.id);
  expect(spec).toMatchObject({
    title: 'Make the value two.',
    task: 'Make the value two.\nIt is one now.',
    agent: { kind: 'command' },
    limits: { iterations: 2 },
  });
  expect(spec.repo).toBe(path.join(stack.config.reposDir, configured));
  await stack.api('POST', `/v1/runs/${res.body.id}/reject`, { body: { comment: 'test over' } });

  const overridden = await stack.api('POST', '/v1/runs/quick', {
    body: {
      repo: configured,
      title: 'Overridden',
      task: 'Same.',
      overrides: `repo: ${configured}\nlimits: { iterations: 1 }\nchecks: null\n`,
    },
  });
  expect(overridden.status).toBe(202);
  const spec2 = await startedSpec(overridden.body.id);
  expect(spec2).toMatchObject({
    title: 'Overridden',
    checks: [],
    limits: { iterations: 1 },
    scope: { allow: ['src/**'] },
  });
  await stack.waitFor(overridden.body.id, ['awaiting_approval']);
  await stack.api('POST', `/v1/runs/${overridden.body.id}/reject`, { body: { comment: 'test over' } });

  const elsewhere = await stack.api('POST', '/v1/runs/quick', {
    body: { repo: configured, task: 'x', overrides: `repo: ${bare}\n` },
  });
  expect(elsewhere.status).toBe(400);
  expect(elsewhere.body.error).toMatchObject({
    message: "invalid overrides: repo at line 1: differs from the request's repo; set it there, not in the overrides",
    issues: [{ field: 'repo', line: 1 }],
  });
  const badBody = await stack.api('POST', '/v1/runs/quick', { body: { repo: configured, task: '  ' } });
  expect([badBody.status, badBody.body.error.message]).toEqual([400, 'task: what the agent should do, in plain words']);
});

test('nightshift run REPO "task" --wait: the title is the first line; a bad repo is one line and exit 2', async () => {
  const env = { NIGHTSHIFT_HOME: stack.config.home, NIGHTSHIFT_URL: stack.apiUrl, NIGHTSHIFT_TOKEN: stack.token };
  const ran = await runCli(
    ['run', configured, 'Set the value from the CLI\nwith a second line', '--wait', '--json'],
    env,
  );
  expect(ran.stderr).toBe('');
  expect(ran.code).toBe(0);
  const run = JSON.parse(ran.stdout);
  expect(run).toMatchObject({ status: 'awaiting_approval', title: 'Set the value from the CLI' });
  expect((await startedSpec(run.id)).checks).toEqual([expect.objectContaining({ name: 'value' })]);
  await stack.api('POST', `/v1/runs/${run.id}/reject`, { body: { comment: 'test over' } });

  const titled = await runCli(['run', configured, 'Do it', '--title', 'A title of its own'], env);
  expect(titled.code).toBe(0);
  const id = titled.stdout.split(/\s+/)[0];
  expect(await startedSpec(id)).toMatchObject({ title: 'A title of its own', task: 'Do it' });
  await stack.waitFor(id, ['awaiting_approval']);
  await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'test over' } });

  const bad = await runCli(['run', 'no-such-repo', 'Do it'], env);
  expect(bad).toMatchObject({ code: 2, stdout: '' });
  expect(bad.stderr).toBe(
    `nightshift: invalid request: repo: "no-such-repo" is not a git repository in the server's repos directory\n`,
  );
  expect((await runCli(['run', configured], env)).code).toBe(2);
});
