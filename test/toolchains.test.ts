import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { prepareRun } from '../admission/prepareRun';
import { runStartOptions } from '../api/submit';
import { loadConfig } from '../config';
import { specRun } from '../workflows/specRun';
import { runCli } from './helpers/cli';
import { gitIn, tempDir, useTestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// Toolchains (docs/reference.md, "Toolchains"), on real bwrap sandboxes with the worker's real Go: the admin offers
// them (NIGHTSHIFT_TOOLCHAINS), a spec asks for them (sandbox.toolchains), and every sandbox of the run has them on
// its PATH, read-only; a command the sandbox lacks is said in words, with what the server offers.

const GO = '/usr/local/go';
const OFFERED = 'go, python';

/** A Go module without dependencies (nothing to download), beside the value the agent sets. */
const GO_REPO = {
  ...VALUE_REPO,
  'go.mod': 'module example.com/tiny\n\ngo 1.21\n',
  'tiny.go': 'package tiny\n\n// Add returns the sum of a and b.\nfunc Add(a, b int) int { return a + b }\n',
  'tiny_test.go':
    'package tiny\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(2, 2) != 4 {\n\t\tt.Fatal("2 + 2 is not 4")\n\t}\n}\n',
};
const GO_CHECK = { name: 'go', run: 'go vet ./... && go test ./...' };

const suite = useTestStack(GO_REPO, { env: { NIGHTSHIFT_TOOLCHAINS: `go=${GO},python=/usr` } });

const runCount = async () =>
  (
    await suite.stack.client.workflow.count(
      `WorkflowType = 'specRun' AND TaskQueue = '${suite.stack.config.taskQueue}'`,
    )
  ).count;

test('a run with sandbox.toolchains: [go] has go in its setup, its agent and its checks; the cache the setup warmed is kept, the toolchain read-only', async () => {
  const { stack, repo } = suite;
  const agent = [
    'go version > notes/go.txt',
    // Bound read-only: neither the toolchain nor the host behind it can be written.
    `if touch ${GO}/planted 2>/dev/null; then echo writable; else echo read-only; fi > notes/toolchain.txt`,
    'echo 2 > src/value.txt',
  ].join('; ');
  const id = await stack.submit(
    spec(repo, agent, {
      sandbox: { toolchains: ['go'] },
      // Warms Go's build cache in the sandbox's HOME, which the environment keeps.
      setup: { run: ['go version', 'go vet ./... && go test ./...'] },
      checks: [...(spec(repo, '').checks as object[]), GO_CHECK],
      limits: { iterations: 1 },
      approval: { required: false },
    }),
  );
  const run = await stack.waitFor(id, ['succeeded', 'failed'], 400_000);
  expect(run.failure).toBeUndefined();
  expect(run.status).toBe('succeeded');
  expect(run.checks.map((c) => [c.name, c.passed])).toEqual([
    ['value', true],
    ['go', true],
  ]);
  expect(run.checks.find((c) => c.name === 'go')!.logTail).toContain('ok  \texample.com/tiny');
  const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
  expect(log).toContain('=== setup: go version');
  expect(log).toMatch(/go version go1\.\d+/);
  expect(gitIn(repo, 'show', `${run.branch}:notes/go.txt`)).toMatch(/^go version go1\.\d+/);
  expect(gitIn(repo, 'show', `${run.branch}:notes/toolchain.txt`).trim()).toBe('read-only');
  expect(existsSync(`${GO}/planted`)).toBe(false);
  // GOCACHE is in the sandbox's HOME: the environment kept what the setup compiled.
  expect(run.environment).toMatchObject({ source: 'built', home: true });
  const entry = path.join(stack.config.home, 'work', stack.workerName!, '.env-cache', run.environment!.key);
  expect(existsSync(path.join(entry, 'home', '.cache', 'go-build'))).toBe(true);
}, 500_000);

test('without the toolchain, go is not found: the setup and a check say so, naming the toolchains offered', async () => {
  const { stack, repo } = suite;
  const [setupRun, checkRun] = await Promise.all([
    stack.submit(
      spec(repo, 'echo 2 > src/value.txt', { setup: { run: ['go version'] }, approval: { required: false } }),
    ),
    stack.submit(
      spec(repo, 'echo 2 > src/value.txt', {
        checks: [GO_CHECK],
        limits: { iterations: 1 },
        approval: { required: false },
      }),
    ),
  ]);
  const notFound = `go: not found in the sandbox; toolchains offered: ${OFFERED} (sandbox.toolchains)`;
  const setup = await stack.waitFor(setupRun, ['failed'], 180_000);
  expect(setup.failure).toEqual({ stage: 'setup', reason: `setup command "go version" exited 127: ${notFound}` });
  const checked = await stack.waitFor(checkRun, ['failed'], 180_000);
  expect(checked.failure!.stage).toBe('checks');
  expect(checked.failure!.reason.split('\n')[0]).toBe(
    `Check "go" (\`${GO_CHECK.run}\`) failed with exit code 127 (${notFound}). Its log ends with:`,
  );
  expect(checked.checks[0]).toMatchObject({ name: 'go', passed: false, exitCode: 127, notFound });
  expect(checked.stages.find((s) => s.stage === 'checks')!.summary).toBe(`go failed (${notFound})`);
  expect(checked.checks[0].logTail).toContain(`[nightshift: ${notFound}]`);
}, 400_000);

test('without the toolchain, an agent whose go is not found says so on its stage, the failure and `nightshift status`; an agent failing otherwise does not', async () => {
  const { stack, repo } = suite;
  const once = { limits: { iterations: 1 }, approval: { required: false } };
  const [missingRun, failingRun] = await Promise.all([
    stack.submit(spec(repo, 'go version', once)),
    // The shell's words, but not its exit: an agent failing for its own reasons is not told of toolchains.
    stack.submit(spec(repo, 'echo 2 > src/value.txt; echo "sh: 1: go: not found" >&2; exit 1', once)),
  ]);
  const notFound = `go: not found in the sandbox; toolchains offered: ${OFFERED} (sandbox.toolchains)`;
  const missing = await stack.waitFor(missingRun, ['failed'], 180_000);
  expect(missing.failure!.stage).toBe('agent');
  expect(missing.failure!.reason.split('\n')[0]).toBe(
    `The agent exited with code 127 (${notFound}). Its log ends with:`,
  );
  expect(missing.agent).toMatchObject({ exitCode: 127, notFound });
  expect(missing.agent!.logTail).toContain(`sh: 1: go: not found\n\n[nightshift: ${notFound}]`);
  const summary = `exit 127 (${notFound}), 0 file(s) changed`;
  expect(missing.stages.find((s) => s.stage === 'agent')!.summary).toBe(summary);
  const status = await runCli(['status', missingRun], {
    NIGHTSHIFT_HOME: stack.config.home,
    NIGHTSHIFT_URL: stack.apiUrl,
    NIGHTSHIFT_TOKEN: stack.token,
  });
  expect(status.code).toBe(0);
  expect(status.stdout).toContain(`failure    agent: The agent exited with code 127 (${notFound}). Its log ends with:`);
  expect(status.stdout).toMatch(new RegExp(`\\n  agent +#1  failed +\\S+  ${summary.replace(/[().]/g, '\\$&')}\\n`));

  const failing = await stack.waitFor(failingRun, ['failed'], 180_000);
  expect(failing.failure!.stage).toBe('agent');
  expect(failing.failure!.reason.split('\n')[0]).toBe('The agent exited with code 1. Its log ends with:');
  expect(failing.agent!.exitCode).toBe(1);
  expect(failing.agent!.notFound).toBeUndefined();
  expect(failing.agent!.logTail).toContain('sh: 1: go: not found');
  expect(failing.agent!.logTail).not.toContain('not found in the sandbox');
  expect(failing.stages.find((s) => s.stage === 'agent')!.summary).toBe('exit 1, 1 file(s) changed');
}, 400_000);

test('a spec asking for a toolchain the server does not offer → 400 naming sandbox.toolchains.N; nothing starts', async () => {
  const { stack, repo } = suite;
  const before = await runCount();
  const res = await stack.api('POST', '/v1/runs', {
    body: spec(repo, 'true', { sandbox: { toolchains: ['go', 'rust'] } }),
  });
  expect(res.status).toBe(400);
  expect(res.body.error.message).toBe(
    `invalid spec: sandbox.toolchains.1: the toolchain "rust" is not offered on this server (toolchains offered: ${OFFERED}; NIGHTSHIFT_TOOLCHAINS)`,
  );
  expect(res.body.error.issues).toEqual([expect.objectContaining({ field: 'sandbox.toolchains.1' })]);
  expect(await runCount()).toBe(before);
});

test('a run started past admission with a toolchain this worker does not offer fails, and its sandbox is still removed', async () => {
  const { stack, repo } = suite;
  // Admitted by a server that offers rust (another config), run by this worker, which does not.
  const elsewhere = { ...stack.config, toolchains: { ...stack.config.toolchains, rust: '/usr' } };
  const input = prepareRun(
    JSON.stringify(spec(repo, 'echo 2 > src/value.txt', { sandbox: { toolchains: ['rust'] } })),
    'application/json',
    'admin',
    elsewhere,
  );
  const id = `ns-toolchain-${Date.now()}`;
  await stack.client.workflow.start(specRun, { ...runStartOptions(input, stack.config), workflowId: id });
  const run = await stack.waitFor(id, ['failed'], 120_000);
  expect(run.failure!.reason).toContain(
    `offers no toolchain rust (it offers: ${OFFERED}; NIGHTSHIFT_TOOLCHAINS); the spec asks for it in sandbox.toolchains`,
  );
  expect(run.stages.find((s) => s.stage === 'agent')).toBeUndefined();
  // The teardown needs no toolchain: the run's sandbox is gone.
  const root = path.join(stack.config.home, 'work', stack.workerName!, id);
  for (let i = 0; i < 50 && existsSync(root); i++) await new Promise((r) => setTimeout(r, 200));
  expect(existsSync(root)).toBe(false);
}, 180_000);

test('a toolchain pointing at a secret, directly or through a link, is refused when the config loads', () => {
  const { stack } = suite;
  const load = (toolchains: string) => () => loadConfig({ ...stack.env, NIGHTSHIFT_TOOLCHAINS: toolchains });
  expect(load('ssh=/root/.ssh')).toThrow(/^NIGHTSHIFT_TOOLCHAINS: ssh=\/root\/\.ssh is inside \/root \(/);
  const links = tempDir('toolchain-links');
  mkdirSync(path.join(links, 'bin'));
  // /root itself: a link's target must exist (/root/.ssh may not, on a fresh machine).
  symlinkSync('/root', path.join(links, 'go'));
  expect(load(`go=${links}/go`)).toThrow(
    `NIGHTSHIFT_TOOLCHAINS: go=${links}/go leads to /root, which is inside /root (`,
  );
  symlinkSync(stack.config.home, path.join(links, 'home'));
  expect(load(`x=${links}/home`)).toThrow(
    `NIGHTSHIFT_TOOLCHAINS: x=${links}/home leads to ${stack.config.home}, which is inside ${stack.config.home} (Nightshift's own data)`,
  );
  expect(load(`go=${GO}`)().toolchains).toEqual({ go: GO });
});
