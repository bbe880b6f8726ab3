import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCli, type CliResult as Result } from './helpers/cli';
import { makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

function specFile(name: string, content: string): string {
  const file = path.join(tempDir('specs'), name);
  writeFileSync(file, content);
  return file;
}

/** Node prints a stack as lines like "    at fn (/path/file.js:12:3)". */
const STACK = /^\s+at .*(\.js|\.ts|node:)/m;

// The CLI against the real API, worker and Temporal (no stand-in for the API).

describe('against the real API', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    stack = await startTestStack();
    repo = makeRepo(VALUE_REPO);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** The real CLI, as a child process, against the real API. */
  function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
    return runCli(args, {
      NIGHTSHIFT_HOME: stack.config.home,
      NIGHTSHIFT_URL: stack.apiUrl,
      NIGHTSHIFT_TOKEN: stack.token,
      ...env,
    });
  }

  test('submit --wait follows a run to awaiting_approval; status, logs, diff and approve work on it', async () => {
    const file = specFile('value.json', JSON.stringify(spec(repo, 'echo agent says hello; echo 2 > src/value.txt')));
    const submitted = await cli(['submit', file, '--wait', '--json']);
    expect(submitted.stderr).toBe('');
    expect(submitted.code).toBe(0);
    const run = JSON.parse(submitted.stdout);
    expect(run.status).toBe('awaiting_approval');

    const status = await cli(['status', run.id]);
    expect(status.stdout).toContain('status     awaiting_approval');
    // The value check is a shell test that prints no test counts: it passes, unverified, and status says so.
    expect(status.stdout).toMatch(/checks\n {2}pass UNVERIFIED {2}value/);
    expect(status.stdout).toMatch(/^review {5}approve, NOT VERIFIED \(1\)$/m);
    expect(JSON.parse((await cli(['status', run.id, '--json'])).stdout).id).toBe(run.id);
    expect((await cli(['logs', run.id])).stdout).toContain('agent says hello');
    expect((await cli(['diff', run.id])).stdout).toMatch(/^\+2$/m);
    const listed = JSON.parse((await cli(['runs', '--json', '--limit', '100'])).stdout);
    expect(listed.runs.map((r: { id: string }) => r.id)).toContain(run.id);

    const approved = await cli(['approve', run.id, '-m', 'from the CLI']);
    expect(approved).toMatchObject({ code: 0, stdout: `${run.id}: approved\n` });
    const followed = await cli(['logs', run.id, '-f']);
    expect(followed.code).toBe(0);
    expect(followed.stdout).toContain('=== deliver:');
    const done = await stack.state(run.id);
    expect(done.status).toBe('succeeded');
    expect(done.decisions[0]).toMatchObject({ kind: 'approve', comment: 'from the CLI', by: 'admin' });
    expect((await cli(['approve', run.id])).code).toBe(5);
  });

  test('failures exit with their code and one line, never a stack trace', async () => {
    const bad = await cli(['submit', specFile('bad.md', '---\ntitle: x\nrepo: /tmp\nagent:\n  kind: gpt\n---\n')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^nightshift: invalid spec: agent\.kind at line 5: .*\n {2}agent\.kind at line 5: /);
    expect(bad.stderr).not.toMatch(STACK);

    expect((await cli(['submit', '/no/such/spec.md'])).stderr).toBe('nightshift: no such file: /no/such/spec.md\n');
    expect((await cli(['status', 'ns-unknown'])).code).toBe(4);
    const noToken = await cli(['runs'], { NIGHTSHIFT_TOKEN: 'wrong' });
    expect(noToken).toMatchObject({ code: 3, stderr: 'nightshift: invalid token\n' });
    const changes = await cli(['changes', 'ns-unknown']);
    expect(changes).toMatchObject({ code: 2, stderr: 'nightshift: changes needs -m "what should change"\n' });
    const unreachable = await cli(['runs'], { NIGHTSHIFT_URL: 'http://127.0.0.1:9' });
    expect(unreachable).toMatchObject({
      code: 1,
      stderr: 'nightshift: cannot reach the API at http://127.0.0.1:9 (is "nightshift up" running?)\n',
    });
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).not.toMatch(STACK);
  });

  test("a failed run's reason is shown whole: submit --wait and status print the check's log tail under it", async () => {
    const failing = spec(repo, 'echo 3 > src/value.txt', { title: 'Stays wrong', limits: { iterations: 1 } });
    const res = await cli(['submit', specFile('wrong.json', JSON.stringify(failing)), '--wait']);
    expect(res.code).toBe(1);
    // The tail follows the reason's first line, indented under it, down to the check's own output.
    expect(res.stdout).toMatch(
      /^ {2}checks: Check "value" \(`.*`\) failed with exit code 1\. Its log ends with:\n(?: {4}.*\n|\n)* {4}expected 2, got 3\n {4}\[nightshift: check value failed \(exit 1\)\]\n$/m,
    );
    const id = /^(ns-[0-9a-f]+) submitted$/m.exec(res.stdout)![1];
    const status = await cli(['status', id]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(
      /^failure {4}checks: Check "value" \(`.*`\) failed with exit code 1\. Its log ends with:\n(?: {13}.*\n|\n)* {13}expected 2, got 3\n {13}\[nightshift: check value failed \(exit 1\)\]\n/m,
    );
  });

  test('a YAML spec file with an idempotency key: submitting twice gives one run; reject says so', async () => {
    const file = specFile(
      'value.yaml',
      `title: From YAML\nrepo: ${repo}\nagent: { kind: command, command: ["sh", "-c", "echo 2 > src/value.txt"] }\ntask: Set it to two.\n`,
    );
    const first = JSON.parse((await cli(['submit', file, '--json', '--idempotency-key', 'cli-yaml-1'])).stdout);
    const second = JSON.parse((await cli(['submit', file, '--json', '--idempotency-key', 'cli-yaml-1'])).stdout);
    expect(second.id).toBe(first.id);
    const run = await stack.waitFor(first.id, ['awaiting_approval']);
    expect(run.title).toBe('From YAML');
    expect(await cli(['reject', first.id, '-m', 'no thanks'])).toMatchObject({
      code: 0,
      stdout: `${first.id}: rejected\n`,
    });
    expect((await stack.waitFor(first.id, ['rejected'])).decisions[0]).toMatchObject({
      kind: 'reject',
      comment: 'no thanks',
    });
  });

  test('the CLI uses $NIGHTSHIFT_HOME/token when NIGHTSHIFT_TOKEN is unset', async () => {
    const res = await cli(['runs', '--json'], { NIGHTSHIFT_TOKEN: undefined });
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toHaveProperty('runs');
  });

  test('token add makes a working token with its role at once; rm revokes it', async () => {
    const add = await cli(['token', 'add', 'my-phone', '--role', 'viewer']);
    expect(add.code).toBe(0);
    const phone = add.stdout.trim();
    expect(phone).toMatch(/^ns_/);
    expect((await cli(['runs', '--json'], { NIGHTSHIFT_TOKEN: phone })).code).toBe(0);
    const approve = await cli(['approve', 'ns-000000000000'], { NIGHTSHIFT_TOKEN: phone });
    expect(approve).toMatchObject({
      code: 3,
      stderr: 'nightshift: token "my-phone" is a viewer; this needs approver\n',
    });
    expect(JSON.parse((await cli(['token', 'ls', '--json'])).stdout).tokens).toContainEqual({
      name: 'my-phone',
      role: 'viewer',
    });
    expect((await cli(['token', 'add', 'x', '--role', 'god'])).code).toBe(2);
    expect((await cli(['token', 'rm', 'my-phone'])).code).toBe(0);
    expect((await cli(['runs'], { NIGHTSHIFT_TOKEN: phone })).code).toBe(3);
    expect(readFileSync(path.join(stack.config.home, 'tokens.json'), 'utf8')).not.toContain(phone);
  });

  test('schedule add, ls, unpause, pause, trigger and rm', async () => {
    const file = specFile(
      'nightly.md',
      `---\ntitle: Nightly value\nrepo: ${repo}\nagent: { kind: command, command: ["sh", "-c", "echo 2 > src/value.txt"] }\napproval: { required: false }\n---\nKeep the value at two.\n`,
    );
    const add = await cli(['schedule', 'add', file, '--cron', '0 3 * * *', '--id', 'cli-nightly', '--paused']);
    expect(add).toMatchObject({ code: 0, stdout: 'schedule cli-nightly added (0 3 * * *)\n' });
    const ls = JSON.parse((await cli(['schedule', 'ls', '--json'])).stdout);
    expect(ls.schedules.find((s: { id: string }) => s.id === 'cli-nightly')).toMatchObject({
      cron: '0 3 * * *',
      title: 'Nightly value',
      paused: true,
    });
    expect(await cli(['schedule', 'unpause', 'cli-nightly'])).toMatchObject({
      code: 0,
      stdout: 'schedule cli-nightly unpaused\n',
    });
    expect(
      JSON.parse((await cli(['schedule', 'ls', '--json'])).stdout).schedules.find(
        (s: { id: string }) => s.id === 'cli-nightly',
      ).paused,
    ).toBe(false);
    expect((await cli(['schedule', 'pause', 'cli-nightly'])).code).toBe(0);
    expect((await cli(['schedule', 'trigger', 'cli-nightly'])).code).toBe(0);
    expect((await cli(['schedule', 'rm', 'cli-nightly'])).code).toBe(0);
    expect((await cli(['schedule', 'rm', 'cli-nightly'])).code).toBe(4);
  });
});

test('doctor says which sandbox drivers are usable here, and why not, and which agent CLIs are there', async () => {
  const withEngine = await runCli(['doctor', '--json'], {
    DOCKER_HOST: process.env.NIGHTSHIFT_TEST_DOCKER_HOST,
    NIGHTSHIFT_DOCKER_IMAGE: 'nightshift-sandbox:latest',
  });
  expect(withEngine.code).toBe(0);
  const drivers = (out: Result) =>
    Object.fromEntries(
      JSON.parse(out.stdout)
        .checks.filter((c: { name: string }) => c.name.startsWith('sandbox:'))
        .map((c: { name: string; found: string | null; fix: string }) => [c.name, c.found ?? `not usable: ${c.fix}`]),
    );
  expect(drivers(withEngine)).toEqual({
    'sandbox:bwrap': expect.stringMatching(/^bubblewrap \d+\.\d+\.\d+, cgroup v1 limits$/),
    'sandbox:docker': expect.stringMatching(
      /^Podman Engine [\d.]+ at unix:\/\/.*podman\.sock, image nightshift-sandbox:latest$/,
    ),
  });
  const agents = Object.fromEntries(
    JSON.parse(withEngine.stdout)
      .checks.filter((c: { name: string }) => c.name.startsWith('agent:'))
      .map((c: { name: string; found: string }) => [c.name, c.found]),
  );
  expect(agents).toEqual({
    'agent:claude-code': expect.stringMatching(/^\d+\.\d+\.\d+ \(Claude Code\)$/),
    'agent:codex': expect.stringMatching(/^codex-cli \d+\.\d+\.\d+$/),
  });
  const noImage = await runCli(['doctor', '--json'], {
    DOCKER_HOST: process.env.NIGHTSHIFT_TEST_DOCKER_HOST,
    NIGHTSHIFT_DOCKER_IMAGE: 'nightshift-no-such-image:1',
  });
  expect(drivers(noImage)['sandbox:docker']).toMatch(
    /^not usable: image nightshift-no-such-image:1 is missing \(build it: /,
  );
  const noEngine = await runCli(['doctor'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
  expect(noEngine.stdout).toMatch(
    /^absent\s+sandbox:docker\s+→ no Docker API at unix:\/\/\/nonexistent\/docker\.sock: /m,
  );
  // docker is optional: the machine is still fine with bwrap alone.
  expect(noEngine.code).toBe(0);
});
