import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ActivityDeps } from '../runtime/deps';
import { environmentKey } from '../workspaces/environments';
import { RunRepo } from '../git/git';
import { sandboxRoot } from '../workspaces/sandboxes';
import { DEFAULT_SANDBOX, SetupSchema, type Spec } from '../spec/schema';
import { FsArtifactStore } from '../store/fsArtifacts';
import { gitIn, makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';
import { tarball } from './helpers/tarball';

// Whose environment a run gets (docs/environments.md, "The key"): an entry is reused only where it is what this run's
// setup would have made (the base's whole tree, the setup's sandbox), an entry made from a base off the default branch
// is its submitter's alone, and an entry from the artifact store that could lead out of its directory is refused.

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** A repo whose setup is a script of its own, beside an unchanging lock file: the script decides what is installed. */
const SCRIPTED_REPO = {
  ...VALUE_REPO,
  'package-lock.json': '{"lockfileVersion": 3}\n',
  'scripts/setup.sh': installing('clean'),
};
const SETUP = { run: ['sh scripts/setup.sh'] };
/** The agent writes down what the environment holds, and does the task. */
const LOOK = 'cat node_modules/dep/origin > notes/origin.txt; ls -a "$HOME" > notes/home.txt; echo 2 > src/value.txt';

function installing(origin: string): string {
  return `mkdir -p node_modules/dep && echo ${origin} > node_modules/dep/origin\n`;
}

function commitScript(repo: string, origin: string, message: string) {
  writeFileSync(path.join(repo, 'scripts/setup.sh'), installing(origin));
  gitIn(repo, 'commit', '--quiet', '-am', message);
}

/** A run of LOOK on `repo` with SETUP, to its end. */
async function looked(repo: string, extra: Record<string, unknown> = {}) {
  return stack.waitFor(
    await stack.submit(spec(repo, LOOK, { setup: SETUP, approval: { required: false }, ...extra })),
    ['succeeded', 'failed'],
    180_000,
  );
}

const cacheDir = () => path.join(stack.config.home, 'work', stack.workerName!, '.env-cache');
const noteOf = (repo: string, branch: string, file: string) => gitIn(repo, 'show', `${branch}:notes/${file}`).trim();

test("the key covers the base's whole tree and the setup's sandbox; an entry from a base off the default branch is its submitter's alone", async () => {
  const repo = makeRepo(SCRIPTED_REPO);
  const main1 = gitIn(repo, 'rev-parse', 'HEAD').trim();
  gitIn(repo, 'commit', '--quiet', '--allow-empty', '-m', 'nothing changed');
  const sameTree = gitIn(repo, 'rev-parse', 'HEAD').trim();
  commitScript(repo, 'v2', 'the setup script changes, the lock file does not');
  const newScript = gitIn(repo, 'rev-parse', 'HEAD').trim();
  gitIn(repo, 'checkout', '--quiet', '-b', 'evil', main1);
  commitScript(repo, 'evil', 'a setup script of my own');
  const evil = gitIn(repo, 'rev-parse', 'HEAD').trim();
  gitIn(repo, 'checkout', '--quiet', 'main');

  const home = tempDir('env-key');
  const deps = (more: Partial<ActivityDeps> = {}) =>
    ({
      home,
      self: { worker: 'w' },
      drivers: {},
      setupNetwork: [],
      egressInternal: [],
      toolchains: { go: '/usr/local/go', python: '/usr' },
      ...more,
    }) as unknown as ActivityDeps;
  const runRoot = sandboxRoot(deps(), 'run');
  mkdirSync(runRoot, { recursive: true });
  const run = new RunRepo(runRoot, path.join(runRoot, 'workspace'));
  await run.cloneFrom(repo);
  await run.rememberDefaultBranch();
  const key = (
    commit: string,
    o: { setup?: object; sandbox?: Partial<Spec['sandbox']>; by?: string; deps?: ActivityDeps } = {},
  ) =>
    environmentKey(
      o.deps ?? deps(),
      'run',
      { repo, baseCommit: commit, setup: SetupSchema.parse(o.setup ?? SETUP), submittedBy: o.by ?? 'alice' },
      { ...DEFAULT_SANDBOX, ...o.sandbox },
    );

  const base = await key(main1);
  expect(await key(main1, { by: 'bob' })).toBe(base);
  expect(await key(sameTree)).toBe(base);
  expect(await key(main1, { sandbox: { network: ['example.com'] } })).toBe(base);
  // Everything that shapes what the setup makes is a new key.
  const changed = {
    'a setup script, its lock file unchanged': await key(newScript),
    "the setup's network": await key(main1, { setup: { ...SETUP, network: ['registry.npmjs.org'] } }),
    "the server's setup network": await key(main1, { deps: deps({ setupNetwork: ['proxy.golang.org'] }) }),
    "the admin's internal openings": await key(main1, { deps: deps({ egressInternal: ['127.0.0.1:4873'] }) }),
    "the setup's timeout": await key(main1, { setup: { ...SETUP, timeout: '5m' } }),
    "the sandbox's timeout (the setup's default)": await key(main1, { sandbox: { timeout: 60_000 } }),
    cpus: await key(main1, { sandbox: { cpus: 4 } }),
    memory: await key(main1, { sandbox: { memory: 1024 ** 3 } }),
    disk: await key(main1, { sandbox: { disk: 1024 ** 3 } }),
    driver: await key(main1, { sandbox: { driver: 'docker' } }),
    // A toolchain is on the setup's PATH, and on bwrap the worker's own directory: which one, and what its bin/ holds.
    'a toolchain': await key(main1, { sandbox: { toolchains: ['go'] } }),
    'another toolchain': await key(main1, { sandbox: { toolchains: ['python'] } }),
    "the toolchain's directory on the worker": await key(main1, {
      sandbox: { toolchains: ['go'] },
      deps: deps({ toolchains: { go: '/usr/local' } }),
    }),
    'the commands': await key(main1, { setup: { run: ['sh scripts/setup.sh', 'true'] } }),
  };
  for (const [what, k] of Object.entries(changed)) expect({ what, same: k === base }).toEqual({ what, same: false });
  expect(new Set(Object.values(changed)).size).toBe(Object.keys(changed).length);
  // A toolchain upgraded in place (bwrap: the worker's own directory): the same path, another bin/, a new key.
  const toolchain = tempDir('toolchain');
  mkdirSync(path.join(toolchain, 'bin'));
  writeFileSync(path.join(toolchain, 'bin', 'tool'), 'v1\n');
  const withTool = () => key(main1, { sandbox: { toolchains: ['go'] }, deps: deps({ toolchains: { go: toolchain } }) });
  const v1 = await withTool();
  expect(await withTool()).toBe(v1);
  writeFileSync(path.join(toolchain, 'bin', 'tool'), 'v2, a larger binary\n');
  expect(await withTool()).not.toBe(v1);

  // Off the default branch: each submitter has an entry of their own, and none is the default branch's.
  const alices = await key(evil);
  expect(await key(evil)).toBe(alices);
  expect(await key(evil, { by: 'bob' })).not.toBe(alices);
  // With `setup.key` the spec says which files are all the setup reads: a script change on the default branch keeps
  // the entry; a branch with the same lock file still never shares the default branch's.
  const locked = { ...SETUP, key: ['package-lock.json'] };
  expect(await key(newScript, { setup: locked })).toBe(await key(main1, { setup: locked, by: 'bob' }));
  expect(await key(evil, { setup: locked })).not.toBe(await key(main1, { setup: locked }));
  expect(await key(evil, { setup: locked, by: 'bob' })).not.toBe(await key(evil, { setup: locked }));
});

describe.each(['bwrap', 'docker'])("%s: one author's branch", (driver) => {
  test("does not decide another author's environment", async () => {
    const repo = makeRepo(SCRIPTED_REPO);
    gitIn(repo, 'checkout', '--quiet', '-b', 'evil');
    commitScript(repo, 'evil', 'the same lock file, a setup script of my own');
    gitIn(repo, 'checkout', '--quiet', 'main');
    const mallory = stack.tokens.create(`mallory-${driver}`, 'submitter');
    const submitted = await stack.api('POST', '/v1/runs', {
      body: spec(repo, LOOK, { setup: SETUP, sandbox: { driver }, approval: { required: false }, base: 'evil' }),
      token: mallory,
    });
    expect(submitted.status).toBe(202);
    const evil = await stack.waitFor(submitted.body.id, ['succeeded', 'failed'], 180_000);
    expect(evil.failure).toBeUndefined();
    expect(noteOf(repo, evil.branch, 'origin.txt')).toBe('evil');

    // Another author, on the default branch: the setup runs the default branch's script.
    const honest = await looked(repo, { sandbox: { driver } });
    expect(honest.failure).toBeUndefined();
    expect(honest.environment?.source).toBe('built');
    expect(honest.environment?.key).not.toBe(evil.environment?.key);
    expect(noteOf(repo, honest.branch, 'origin.txt')).toBe('clean');
  }, 400_000);
});

test('a setup script changed on the default branch, its lock file not, is a new environment', async () => {
  const repo = makeRepo(SCRIPTED_REPO);
  const first = await looked(repo);
  expect(noteOf(repo, first.branch, 'origin.txt')).toBe('clean');
  commitScript(repo, 'v2', 'install the second version');
  const second = await looked(repo);
  expect(second.failure).toBeUndefined();
  expect(second.environment?.source).toBe('built');
  expect(noteOf(repo, second.branch, 'origin.txt')).toBe('v2');
}, 300_000);

test('an entry in the artifact store whose home leads out of it is refused on a worker without it; the setup makes it again', async () => {
  const repo = makeRepo(SCRIPTED_REPO);
  const key = (await looked(repo)).environment!.key;
  // What a forged upload under the entry's name could hold: the worker's own directory as the sandbox's home, a
  // package of its choosing, and a member named by its absolute path outside.
  const hostDir = tempDir('host-home');
  writeFileSync(path.join(hostDir, 'host-secret'), 'host secret\n');
  const manifest = JSON.stringify({
    key,
    paths: ['node_modules'],
    home: true,
    bytes: 1,
    createdAt: new Date().toISOString(),
    builtBy: 'forger',
  });
  const forged = tarball([
    { name: 'manifest.json', body: manifest },
    { name: 'workspace/node_modules/dep/', type: 'dir' },
    { name: 'workspace/node_modules/dep/origin', body: 'forged\n' },
    { name: 'home', type: 'symlink', link: hostDir },
    { name: `${hostDir}/planted`, body: 'x' },
  ]);
  const store = new FsArtifactStore(path.join(stack.config.home, 'artifacts'));
  await store.setName(`env-${key}`, await store.put(forged));
  // As on another worker: nothing kept here.
  rmSync(cacheDir(), { recursive: true, force: true });
  const second = await looked(repo);
  expect(second.failure).toBeUndefined();
  expect(noteOf(repo, second.branch, 'home.txt')).not.toContain('host-secret');
  expect(noteOf(repo, second.branch, 'origin.txt')).toBe('clean');
  expect(second.environment).toMatchObject({ key, source: 'built' });
  expect((await stack.api('GET', `/v1/runs/${second.id}/logs`)).text).toContain(
    `the artifact store's env-${key} is refused: home is not a directory`,
  );
  expect(readdirSync(hostDir)).toEqual(['host-secret']);
  expect(readFileSync(path.join(hostDir, 'host-secret'), 'utf8')).toBe('host secret\n');
}, 300_000);
