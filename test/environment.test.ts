import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as path from 'node:path';
import { mountsUnder } from '../sandbox/overlay';
import { gitIn, makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// The setup stage and the environment cache (docs/environments.md), with real sandboxes, overlays and git: the setup
// runs once per key, on the base, with its own network; every sandbox of a run sees what it made; nothing an agent
// does to it, or to the kept checkout its workspace lies over, reaches another run.

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** A setup that "installs" a package into node_modules and leaves a tool cache in the home, offline. */
const SETUP = {
  run: [
    "mkdir -p node_modules/dep && printf 'module.exports = 1;\\n' > node_modules/dep/index.js",
    'mkdir -p "$HOME/.cache/tool" && echo cached > "$HOME/.cache/tool/entry"',
  ],
};
const LOCKED_REPO = { ...VALUE_REPO, 'package-lock.json': '{"lockfileVersion": 3}\n' };

const cacheDir = () => path.join(stack.config.home, 'work', stack.workerName!, '.env-cache');
const runLog = async (id: string) => (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
const artifact = (id: string) => readFileSync(path.join(stack.config.home, 'artifacts', id.slice(0, 2), id), 'utf8');

describe.each(['bwrap', 'docker'])('%s: an environment the setup made', (driver) => {
  test("is there for the agent and the checks, offline; an agent's changes to it reach no later run", async () => {
    const repo = makeRepo(LOCKED_REPO);
    const poison = [
      // The workspace is still the overlay on the kept checkout after the environment's own mounts went in.
      'stat -f -c %T . > notes/fs.txt',
      'cat node_modules/dep/index.js > notes/seen.txt',
      'cat "$HOME/.cache/tool/entry" > notes/home.txt',
      // Everything an agent could do to its environment: edit a package, add a file, rewrite the home's cache.
      "echo 'module.exports = 666;' > node_modules/dep/index.js",
      'touch node_modules/planted',
      'echo poisoned > "$HOME/.cache/tool/entry"',
      // And the checkout the workspace lies over (git/checkouts.ts): a tracked file rewritten in place.
      'echo 2 > src/value.txt',
    ].join('; ');
    // Passes only on the environment as the setup made it: the package, no planted file, the home's cache.
    const checks = [
      {
        name: 'dep',
        run: "node -e \"const fs = require('fs'); process.exit(require('dep') === 1 && !fs.existsSync('node_modules/planted') && fs.readFileSync(process.env.HOME + '/.cache/tool/entry', 'utf8') === 'cached\\n' ? 0 : 1)\"",
      },
    ];
    const branches: Record<string, string> = {};
    const first = await stack.submit(
      spec(repo, poison, { setup: SETUP, checks, sandbox: { driver }, approval: { required: false } }),
    );
    const one = await stack.waitFor(first, ['succeeded', 'failed'], 180_000);
    expect(one.failure).toBeUndefined();
    branches[first] = one.branch;
    expect(one.environment).toMatchObject({ source: 'built', paths: ['node_modules'], home: true, mounted: 'overlay' });
    expect(one.stages.map((s) => s.stage).slice(0, 3)).toEqual(['provision', 'setup', 'agent']);
    const show = (id: string, file: string) => gitIn(repo, 'show', `${branches[id]}:notes/${file}`).trim();
    expect(show(first, 'fs.txt')).toBe('overlayfs');
    expect(show(first, 'seen.txt')).toBe('module.exports = 1;');
    expect(show(first, 'home.txt')).toBe('cached');
    // The checks saw the environment's pristine layers, not the agent's edits to them (docs/checks.md, "Checks see
    // only the change"): a package the agent rewrote in its node_modules judges nothing.
    expect(one.checks.find((c) => c.name === 'dep')?.passed).toBe(true);
    // The environment is no part of the change.
    expect(gitIn(repo, 'ls-tree', '-r', '--name-only', one.branch)).not.toContain('node_modules');

    const entry = path.join(cacheDir(), one.environment!.key);
    expect(readFileSync(path.join(entry, 'workspace/node_modules/dep/index.js'), 'utf8')).toBe('module.exports = 1;\n');
    expect(existsSync(path.join(entry, 'workspace/node_modules/planted'))).toBe(false);
    expect(readFileSync(path.join(entry, 'home/.cache/tool/entry'), 'utf8')).toBe('cached\n');

    // Kept per owner: the docker driver's files are its sandbox user's (1000), bwrap's the worker's (root here).
    const checkouts = path.join(stack.config.home, 'work', stack.workerName!, '.checkouts');
    const owner = driver === 'docker' ? 1000 : process.getuid!();
    const kept = readdirSync(checkouts, { recursive: true, encoding: 'utf8' }).filter(
      (p) => p === `${owner}/${gitIn(repo, 'rev-parse', `${one.baseCommit}^{tree}`).trim()}/tree/src/value.txt`,
    );
    expect(kept).toHaveLength(1);
    expect(readFileSync(path.join(checkouts, kept[0]), 'utf8')).toBe('1\n');

    const look = [
      'cat src/value.txt > notes/before.txt',
      'cat node_modules/dep/index.js > notes/seen.txt',
      'ls node_modules > notes/ls.txt',
      'cat "$HOME/.cache/tool/entry" > notes/home.txt',
      'echo 2 > src/value.txt',
    ].join('; ');
    const second = await stack.submit(
      spec(repo, look, { setup: SETUP, sandbox: { driver }, approval: { required: false } }),
    );
    const two = await stack.waitFor(second, ['succeeded', 'failed'], 180_000);
    expect(two.failure).toBeUndefined();
    branches[second] = two.branch;
    expect(two.environment).toMatchObject({ source: 'worker', key: one.environment!.key });
    expect(show(second, 'seen.txt')).toBe('module.exports = 1;');
    expect(show(second, 'ls.txt')).toBe('dep');
    expect(show(second, 'home.txt')).toBe('cached');
    expect(show(second, 'before.txt')).toBe('1');
    // The setup ran once: the second run's log has no setup command in it.
    expect(await runLog(first)).toContain('=== setup: mkdir -p node_modules/dep');
    expect(await runLog(second)).not.toContain('=== setup:');
    // Every overlay is gone with its sandbox.
    expect(await mountsUnder(path.join(stack.config.home, 'work'))).toEqual([]);
  }, 400_000);
});

test('a new lock file is a new environment; a worker without the entry takes it from the artifact store', async () => {
  const repo = makeRepo(LOCKED_REPO);
  const agent = 'cat node_modules/dep/index.js > notes/seen.txt; echo 2 > src/value.txt';
  const submit = () => stack.submit(spec(repo, agent, { setup: SETUP, approval: { required: false } }));
  const first = await stack.waitFor(await submit(), ['succeeded'], 120_000);
  expect(first.environment?.source).toBe('built');

  gitIn(repo, 'commit', '--quiet', '--allow-empty', '-m', 'unrelated');
  const same = await stack.waitFor(await submit(), ['succeeded'], 120_000);
  expect(same.environment).toMatchObject({ source: 'worker', key: first.environment!.key });

  // As on a fresh worker: nothing kept here, so the entry comes packed from the store, where the first run put it.
  rmSync(cacheDir(), { recursive: true, force: true });
  const fetched = await stack.waitFor(await submit(), ['succeeded'], 120_000);
  expect(fetched.environment).toMatchObject({ source: 'store', key: first.environment!.key, paths: ['node_modules'] });
  expect(gitIn(repo, 'show', `${fetched.branch}:notes/seen.txt`).trim()).toBe('module.exports = 1;');

  writeFileSync(path.join(repo, 'package-lock.json'), '{"lockfileVersion": 3, "packages": {}}\n');
  gitIn(repo, 'commit', '--quiet', '-am', 'new lock file');
  const relocked = await stack.waitFor(await submit(), ['succeeded'], 120_000);
  expect(relocked.environment?.source).toBe('built');
  expect(relocked.environment?.key).not.toBe(first.environment!.key);
}, 400_000);

test('a run provisioned again (its workspace freed while it awaited a decision) has its environment back for the next iteration', async () => {
  const repo = makeRepo(LOCKED_REPO);
  const agent = 'cat node_modules/dep/index.js >> notes/seen.txt; echo 2 > src/value.txt';
  const id = await stack.submit(spec(repo, agent, { setup: SETUP }));
  await stack.waitFor(id, ['awaiting_approval'], 120_000);
  expect((await stack.api('POST', `/v1/runs/${id}/request-changes`, { body: { comment: 'once more' } })).status).toBe(
    202,
  );
  await stack.waitFor(id, ['awaiting_approval'], 120_000);
  const state = await stack
    .api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'ok' } })
    .then(() => stack.waitFor(id, ['succeeded'], 120_000));
  const log = await runLog(id);
  // Provisioned twice (the second inside the next agent stage), set up once.
  expect(log.match(/=== provision on /g)).toHaveLength(2);
  expect(state.stages.filter((s) => s.stage === 'setup')).toHaveLength(1);
  // Both iterations' agents read the package: the second on a workspace provisioned again, the environment restored.
  expect(gitIn(repo, 'show', `${state.branch}:notes/seen.txt`)).toBe('module.exports = 1;\nmodule.exports = 1;\n');
  expect(log).toMatch(/environment [0-9a-f]{12} from this worker's cache in \d+ ms/);
}, 300_000);

test('a failing setup ends the run in stage setup with its log; no agent runs, no iteration is spent', async () => {
  const repo = makeRepo(VALUE_REPO);
  const marker = path.join(tempDir('agent-ran'), 'marker');
  const id = await stack.submit(
    spec(repo, `touch ${marker}`, {
      setup: { run: ['echo resolving packages; echo "no such package: lefpad" >&2; exit 3'] },
    }),
  );
  const state = await stack.waitFor(id, ['failed'], 120_000);
  expect(state.failure).toEqual({
    stage: 'setup',
    reason: 'setup command "echo resolving packages; echo "no such package: lefpad" >&2; exit 3" exited 3',
  });
  expect(state.iteration).toBe(0);
  expect(state.stages.map((s) => s.stage)).toEqual(['provision', 'setup']);
  expect(artifact(state.setupLogId!)).toContain('no such package: lefpad');
  expect(await runLog(id)).toContain('resolving packages');
  expect(existsSync(marker)).toBe(false);
  expect(state.environment).toBeUndefined();
});

async function listener(): Promise<{ port: number; heard: string[]; close(): void }> {
  const heard: string[] = [];
  const server = http.createServer((req, res) => {
    heard.push(req.url ?? '');
    res.end('package bytes\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, heard, close: () => server.close() };
}

test("the setup reaches its network; the agent and the checks, with the spec's (none), do not", async () => {
  const registry = await listener();
  try {
    stack.adminAllows({ egressInternal: `127.0.0.1:${registry.port}` });
    const url = `http://127.0.0.1:${registry.port}`;
    // Through the egress proxy (NO_PROXY names loopback, and the sandbox's own loopback has no listener).
    const curl = `curl -fsS -m 5 --noproxy '' -x "$HTTP_PROXY"`;
    const repo = makeRepo(VALUE_REPO);
    const agent = `${curl} ${url}/agent > notes/agent.txt 2>&1 || echo refused > notes/agent.txt; cat vendor/pkg.txt > notes/vendored.txt; echo 2 > src/value.txt`;
    const checks = [{ name: 'fetch', run: `${curl} ${url}/check || true` }];
    const id = await stack.submit(
      spec(repo, agent, {
        setup: {
          run: [`mkdir -p vendor && ${curl} ${url}/setup > vendor/pkg.txt`],
          network: [`127.0.0.1:${registry.port}`],
        },
        checks,
        approval: { required: false },
      }),
    );
    const state = await stack.waitFor(id, ['succeeded', 'failed'], 120_000);
    expect(state.failure).toBeUndefined();
    expect(registry.heard).toEqual(['/setup']);
    expect(gitIn(repo, 'show', `${state.branch}:notes/agent.txt`).trim()).toBe('refused');
    expect(gitIn(repo, 'show', `${state.branch}:notes/vendored.txt`).trim()).toBe('package bytes');
  } finally {
    registry.close();
  }
}, 180_000);

test('what a setup links to outside the workspace is not moved into the cache, nor followed; a name mount options would read as more is not kept', async () => {
  const outside = tempDir('host-dir');
  mkdirSync(path.join(outside, 'keys'));
  writeFileSync(path.join(outside, 'keys', 'id'), 'host secret\n');
  const repo = makeRepo(VALUE_REPO);
  // `real:test` as an overlay's lowerdir would add a second lower layer, `test` from the worker's own directory (the
  // repo's test/ here); `a,b` would end the option.
  const setup = {
    run: [
      `ln -s ${outside}/keys node_modules; ln -s ${outside} escape; mkdir -p real 'real:test' 'a,b' && echo ok > real/f && echo x > 'real:test/f' && echo x > 'a,b/f'`,
    ],
  };
  const agent = "ls 'real:test' > notes/leak.txt 2>&1; echo 2 > src/value.txt";
  const id = await stack.submit(spec(repo, agent, { setup, approval: { required: false } }));
  const state = await stack.waitFor(id, ['succeeded', 'failed'], 120_000);
  expect(state.failure).toBeUndefined();
  expect(state.environment?.paths).toEqual(['real']);
  expect(readdirSync(path.join(process.cwd(), 'test'))).toContain('environment.test.ts');
  expect(gitIn(repo, 'show', `${state.branch}:notes/leak.txt`)).not.toContain('environment.test.ts');
  expect(await runLog(id)).toMatch(
    /not kept \(only real directories with plain names are\): .*"a,b\/".*"real:test\/"|not kept \(only real directories with plain names are\): .*"real:test\/".*"a,b\/"/,
  );
  expect(readFileSync(path.join(outside, 'keys', 'id'), 'utf8')).toBe('host secret\n');
  expect(existsSync(path.join(cacheDir(), state.environment!.key, 'workspace', 'node_modules'))).toBe(false);
}, 180_000);

test('a setup that is not a list of commands, or that asks for an internal address, is refused with the field named', async () => {
  const repo = makeRepo(VALUE_REPO);
  const empty = await stack.api('POST', '/v1/runs', { body: spec(repo, 'true', { setup: { run: [] } }) });
  expect(empty.status).toBe(400);
  expect(empty.body.error.message).toBe('invalid spec: setup.run at line 1: at least one command');
  const internal = await stack.api('POST', '/v1/runs', {
    body: spec(repo, 'true', { setup: { run: ['true'], network: ['10.1.2.3:5000'] } }),
  });
  expect(internal.status).toBe(400);
  expect(internal.body.error.message).toMatch(
    /^invalid spec: setup\.network\.0: "10\.1\.2\.3:5000" is .*NIGHTSHIFT_EGRESS_INTERNAL/,
  );
});
