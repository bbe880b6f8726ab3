// Issue 14, registered remote repos: `nightshift repo add` through the API, a run on `repo: NAME` provisioned from the
// worker's mirror and delivered by a push, and the credential found nowhere but secrets.env. The remote is real git
// over smart HTTP (`git http-backend`) behind a loopback server that answers 401 to any request without the
// credential's Authorization header, and logs every request. A PATH shim for git logs every argv the worker runs.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startGitHttp, type GitHttpServer } from '../testbed/gitHttp';
import { runCli } from './helpers/cli';
import { gitIn, makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

const CREDENTIAL = `tok_${randomBytes(20).toString('hex')}`;
const AUTHORIZATION = `Basic ${Buffer.from(`x-access-token:${CREDENTIAL}`).toString('base64')}`;
/** Many files: the first fetch receives many objects, a later one only what changed. */
const FILES = Object.fromEntries([
  ...Object.entries(VALUE_REPO),
  ...Array.from({ length: 60 }, (_, i) => [`lib/file${i}.txt`, `content ${i}\n`]),
]);

let stack: TestStack;
let server: GitHttpServer;
let serverRoot: string;
let upstream: string;
let shimLog: string;
let savedPath: string | undefined;
/** Every argv seen in /proc while the tests ran that held the credential. */
const argvLeaks: string[] = [];
let procScans = 0;
let poller: NodeJS.Timeout;

const remoteGit = (...args: string[]) => gitIn(path.join(serverRoot, 'acme.git'), ...args);

beforeAll(async () => {
  // A git on PATH ahead of the real one, logging each argv it is given (the worker's git finds it through PATH).
  const shimDir = tempDir('git-shim');
  shimLog = path.join(shimDir, 'argv.log');
  writeFileSync(path.join(shimDir, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${shimLog}'\nexec /usr/bin/git "$@"\n`);
  chmodSync(path.join(shimDir, 'git'), 0o755);
  savedPath = process.env.PATH;
  process.env.PATH = `${shimDir}:${process.env.PATH}`;
  poller = setInterval(scanProcesses, 25);

  serverRoot = tempDir('git-http');
  upstream = makeRepo(FILES);
  gitIn(serverRoot, 'clone', '--quiet', '--bare', upstream, path.join(serverRoot, 'acme.git'));
  server = await startGitHttp(serverRoot, { authorization: AUTHORIZATION });
  stack = await startTestStack();
  writeFileSync(path.join(stack.config.home, 'secrets.env'), `REPO_TOKEN=${CREDENTIAL}\n`);
});
afterAll(async () => {
  clearInterval(poller);
  process.env.PATH = savedPath;
  await stack?.stop();
  await server?.close();
});

/** Every process's argv, looked at: none may hold the credential. */
/** A file's bytes, or undefined when it vanished after it was listed (a transient journal or lock). */
function readUnlessGone(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function scanProcesses(): void {
  procScans++;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (argv.includes(CREDENTIAL)) argvLeaks.push(argv.replace(/\0/g, ' '));
    } catch {
      // gone meanwhile
    }
  }
}

const remotesFile = () =>
  existsSync(path.join(stack.config.home, 'remotes.json'))
    ? readFileSync(path.join(stack.config.home, 'remotes.json'), 'utf8')
    : '';

describe('registering', () => {
  test('nightshift repo add registers a repo and prints its webhook URL and secret once; ls lists it, never the value', async () => {
    const added = await runCli(
      [
        'repo',
        'add',
        'acme',
        `${server.url}/acme.git`,
        '--forge',
        'gitea',
        '--credential',
        'REPO_TOKEN',
        '--approvers',
        'alice,bob',
      ],
      stack.env,
    );
    expect(added).toMatchObject({ code: 0, stderr: '' });
    expect(added.stdout).toContain(`webhook URL:    ${stack.config.publicUrl}/v1/forges/acme/webhook`);
    const secret = /webhook secret: ([0-9a-f]{64})$/m.exec(added.stdout)?.[1];
    expect(secret).toBeDefined();
    expect(JSON.parse(readFileSync(path.join(stack.config.home, 'webhook-secrets.json'), 'utf8'))).toEqual({
      acme: secret,
    });
    for (const file of ['remotes.json', 'webhook-secrets.json'])
      expect(statSync(path.join(stack.config.home, file)).mode & 0o777).toBe(0o600);

    const listed = await runCli(['repo', 'ls', '--json'], stack.env);
    expect(JSON.parse(listed.stdout).repos).toContainEqual({
      name: 'acme',
      kind: 'remote',
      url: `${server.url}/acme.git`,
      forge: 'gitea',
      credential: 'REPO_TOKEN',
      approvers: ['alice', 'bob'],
    });
    expect(listed.stdout).not.toContain(CREDENTIAL);
    expect((await runCli(['repo', 'ls'], stack.env)).stdout).toMatch(
      /^acme\s+remote\s+gitea\s+REPO_TOKEN\s+http:\/\/127\.0\.0\.1:\d+\/acme\.git$/m,
    );

    // A token limited to acme sees acme and no local repo.
    const limited = stack.tokens.create('acme-viewer', 'viewer', ['acme']);
    expect(
      (await stack.api('GET', '/v1/repos', { token: limited })).body.repos.map((r: { name: string }) => r.name),
    ).toEqual(['acme']);
  });

  const local = () => path.basename(makeRepo(VALUE_REPO));
  test.each([
    ['a name with a slash', () => ({ name: 'team/acme', url: `${server.url}/x.git` }), 400, /^name must be/],
    [
      'a URL with a password',
      () => ({ name: 'pw', url: 'https://bob:hunter2@example.com/x.git' }),
      400,
      /^url holds a password: give the credential with --credential NAME/,
    ],
    ['an ext:: transport', () => ({ name: 'ext', url: 'ext::sh -c touch% /tmp/pwned' }), 400, /^url /],
    [
      'a file:// URL',
      () => ({ name: 'file', url: 'file:///etc' }),
      400,
      /^url uses file: only https, http and ssh:\/\/ URLs are allowed$/,
    ],
    ['a URL starting with "-"', () => ({ name: 'dash', url: '--upload-pack=touch /tmp/x' }), 400, /^url /],
    [
      'an unknown forge',
      () => ({ name: 'gl', url: `${server.url}/x.git`, forge: 'gitlab' }),
      400,
      /^forge must be one of gitea, github, none$/,
    ],
    [
      'a credential value instead of a name',
      () => ({ name: 'val', url: `${server.url}/x.git`, credential: 'ghp_abc123' }),
      400,
      /^credential must be a secret's NAME/,
    ],
    ['a name a local repo has', () => ({ name: local(), url: `${server.url}/x.git` }), 400, /is taken by a local repo/],
    [
      'a name already registered',
      () => ({ name: 'acme', url: `${server.url}/other.git` }),
      409,
      /^repo acme is already registered/,
    ],
    ['not JSON', () => 'name=acme', 400, /^the body must be JSON/],
  ])('refused: %s (one line, nothing stored)', async (_what, body, status, message) => {
    const before = remotesFile();
    const res = await stack.api('POST', '/v1/repos', { body: body() });
    expect(res.status).toBe(status);
    expect(res.body.error.message).toMatch(message);
    expect(res.body.error.message.split('\n')).toHaveLength(1);
    expect(remotesFile()).toBe(before);
  });

  test('only an admin adds or removes; the CLI says why in one line with an exit code', async () => {
    const before = remotesFile();
    const submitter = stack.tokens.create('sub', 'submitter');
    expect(
      await stack.api('POST', '/v1/repos', { token: submitter, body: { name: 'mine', url: `${server.url}/x.git` } }),
    ).toMatchObject({ status: 403 });
    expect(await stack.api('DELETE', '/v1/repos/acme', { token: submitter })).toMatchObject({ status: 403 });
    const cli = await runCli(['repo', 'add', 'mine', `${server.url}/x.git`], {
      ...stack.env,
      NIGHTSHIFT_TOKEN: submitter,
    });
    expect(cli.code).toBe(3);
    expect(cli.stderr).toBe('nightshift: token "sub" is a submitter; this needs admin\n');
    const bad = await runCli(['repo', 'add', 'pw', 'https://u:p@example.com/x.git'], stack.env);
    expect(bad).toMatchObject({ code: 2, stdout: '' });
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(remotesFile()).toBe(before);

    expect(
      await stack.api('POST', '/v1/repos', { body: { name: 'gone', url: `${server.url}/gone.git` } }),
    ).toMatchObject({ status: 201 });
    expect(await runCli(['repo', 'rm', 'gone'], stack.env)).toMatchObject({ code: 0, stdout: 'repo gone removed\n' });
    expect(await runCli(['repo', 'rm', 'gone'], stack.env)).toMatchObject({ code: 4 });
    expect(JSON.parse(readFileSync(path.join(stack.config.home, 'webhook-secrets.json'), 'utf8'))).not.toHaveProperty(
      'gone',
    );
  });

  test('a spec naming a URL is still refused; an unregistered name is a local repo that is not there', async () => {
    const url = await stack.api('POST', '/v1/runs', { body: spec(`${server.url}/acme.git`, 'true') });
    expect(url.status).toBe(400);
    expect(url.body.error.issues).toEqual([{ field: 'repo', message: expect.stringMatching(/is a remote/) }]);
    const unknown = await stack.api('POST', '/v1/runs', { body: spec('nobody-registered-this', 'true') });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.issues[0].field).toBe('repo');
  });
});

/** The agent's view, dumped into the workspace (and so into the diff): its environment and the files it can list. */
const DUMP =
  'echo 2 > src/value.txt; env > notes/env.txt; tr "\\0" "\\n" < /proc/self/environ > notes/environ.txt; ls -la / /tmp "$HOME" . > notes/files.txt 2>&1; true';

async function runToEnd(branch: string, status: 'succeeded' | 'failed') {
  // acme is registered as a Gitea repo on a plain git server: a pull request (its default there) has nowhere to go.
  const id = await stack.submit(spec('acme', DUMP, { branch, deliver: { pr: false } }));
  await stack.waitFor(id, ['awaiting_approval']);
  await stack.api('POST', `/v1/runs/${id}/approve`, {});
  return { id, state: await stack.waitFor(id, [status]) };
}

const runLog = async (id: string) => (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
const mirrorLines = (log: string) =>
  [...log.matchAll(/^mirror acme on \S+: (cloned|fetched) in [\d.]+ s, (\d+) objects? received$/gm)].map((m) => ({
    how: m[1],
    objects: Number(m[2]),
  }));

describe('a run on a registered repo', () => {
  let first: string;

  test('is provisioned from the mirror and delivered by pushing its branch to the remote, with the credential', async () => {
    const { id, state } = await runToEnd('nightshift/remote-one', 'succeeded');
    first = id;
    expect(state.repo).toBe('acme');
    expect(remoteGit('rev-parse', 'refs/heads/nightshift/remote-one').trim()).toBe(state.finalCommit);
    expect(remoteGit('show', `${state.finalCommit}:src/value.txt`)).toBe('2\n');
    expect(state.stages.find((s) => s.stage === 'deliver')?.summary).toBe(
      `pushed nightshift/remote-one to acme (${server.url}/acme.git)`,
    );
    const lines = mirrorLines(await runLog(id));
    expect(lines[0]).toEqual({ how: 'cloned', objects: expect.any(Number) });
    expect(lines[0].objects).toBeGreaterThan(60);
    // Every request the worker made carried the credential (none was answered 401).
    expect(server.requests.length).toBeGreaterThan(0);
    expect(server.requests.filter((r) => !r.authorized)).toEqual([]);
    expect(server.requests.some((r) => r.path.endsWith('/git-receive-pack'))).toBe(true);
    // The mirror is a bare repo of the server's, at the registered URL without any credential.
    const mirror = path.join(stack.config.home, 'mirrors', stack.workerName!, 'acme.git');
    expect(readFileSync(path.join(mirror, 'config'), 'utf8')).toContain(`url = ${server.url}/acme.git`);
  });

  test('a second run fetches only what changed upstream', async () => {
    writeFileSync(path.join(upstream, 'README.md'), 'changed upstream\n');
    gitIn(upstream, '-c', 'user.name=T', '-c', 'user.email=t@localhost', 'commit', '--quiet', '-am', 'upstream change');
    gitIn(upstream, 'push', '--quiet', path.join(serverRoot, 'acme.git'), 'main');
    const sent = server.requests.length;
    const { id, state } = await runToEnd('nightshift/remote-two', 'succeeded');
    expect(remoteGit('rev-parse', 'refs/heads/nightshift/remote-two').trim()).toBe(state.finalCommit);
    const [provision] = mirrorLines(await runLog(id));
    const [cold] = mirrorLines(await runLog(first));
    expect(provision.how).toBe('fetched');
    // The upstream commit: a commit, a tree and a blob.
    expect(provision.objects).toBeLessThanOrEqual(4);
    expect(provision.objects).toBeLessThan(cold.objects);
    // The run grew from the new upstream tip.
    expect(remoteGit('merge-base', '--is-ancestor', 'main', 'nightshift/remote-two')).toBeDefined();
    const bytes = (from: number, to: number) =>
      server.requests
        .slice(from, to)
        .filter((r) => r.method === 'POST' && r.path.endsWith('/git-upload-pack'))
        .reduce((n, r) => n + r.bytes, 0);
    expect(server.requests.length).toBeGreaterThan(sent);
    expect(bytes(sent, sent + 3)).toBeLessThan(bytes(0, 3));
  });

  test('the credential is found nowhere outside secrets.env', async () => {
    const found: string[] = [];
    const look = (where: string, text: string) => {
      if (text.includes(CREDENTIAL) || text.includes(AUTHORIZATION.slice('Basic '.length))) found.push(where);
    };
    // Everything under NIGHTSHIFT_HOME but secrets.env: artifact store, proofs, run logs, mirrors, tokens, keys.
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (entry.isFile() && file !== path.join(stack.config.home, 'secrets.env')) {
          const bytes = readUnlessGone(file);
          if (!bytes) continue;
          look(file, bytes.toString('latin1'));
          if (bytes[0] === 0x1f && bytes[1] === 0x8b) look(`${file} (gunzipped)`, gunzipSync(bytes).toString('latin1'));
        }
      }
    };
    walk(stack.config.home);
    // The Temporal server's own database (the dev server's SQLite file and its write-ahead log), as bytes.
    const temporalDb = path.join(process.env.NIGHTSHIFT_TEST_DIR!, 'temporal');
    if (!process.env.NIGHTSHIFT_TEST_CLUSTER) {
      const dbFiles = readdirSync(temporalDb).filter((f) => f.startsWith('temporal.db'));
      expect(dbFiles).toContain('temporal.db');
      // A rollback journal lives only for one transaction: once gone, its pages are in temporal.db, read above or next.
      for (const f of dbFiles) {
        const bytes = readUnlessGone(path.join(temporalDb, f));
        if (bytes) look(`Temporal's ${f}`, bytes.toString('latin1'));
      }
    }
    const mirror = path.join(stack.config.home, 'mirrors', stack.workerName!, 'acme.git');
    expect(existsSync(path.join(mirror, 'config'))).toBe(true);
    expect(readdirSync(path.join(stack.config.home, 'mirrors')).filter((e) => e.startsWith('.access-'))).toEqual([]);
    for (const id of [first]) {
      const history = JSON.stringify(await stack.client.workflow.getHandle(id).fetchHistory()).replace(
        /"data":"([A-Za-z0-9+/]*=*)"/g,
        (_m, b64: string) => Buffer.from(b64, 'base64').toString('utf8'),
      );
      look(`${id} history`, history);
      const diff = (await stack.api('GET', `/v1/runs/${id}/diff`)).text;
      // The sandbox's view is in the diff: the dumps were made.
      expect(diff).toContain('notes/environ.txt');
      expect(diff).toContain('notes/files.txt');
      look(`${id} diff`, diff);
      look(`${id} state`, JSON.stringify(await stack.state(id)));
      look(`${id} log`, await runLog(id));
    }
    expect(found).toEqual([]);
    // The worker ran git for the remote (through the shim), and no argv held the credential.
    const argv = readFileSync(shimLog, 'utf8');
    expect(argv).toMatch(new RegExp(`clone --bare --template= --progress -- ${server.url}/acme\\.git`));
    expect(argv).toMatch(/ push --quiet --no-verify -- http:/);
    expect(argv).not.toContain(CREDENTIAL);
    expect(procScans).toBeGreaterThan(10);
    expect(argvLeaks).toEqual([]);
  });

  test('a push the remote rejects (the branch moved there) fails the run at deliver with the reason; the branch is untouched', async () => {
    // Someone else's work on the run's branch name, on the remote only.
    const other = makeRepo({ 'other.txt': 'not ours\n' });
    gitIn(other, 'push', '--quiet', path.join(serverRoot, 'acme.git'), 'HEAD:refs/heads/nightshift/shared');
    const theirs = remoteGit('rev-parse', 'refs/heads/nightshift/shared').trim();
    const { state } = await runToEnd('nightshift/shared', 'failed');
    expect(state.failure?.stage).toBe('deliver');
    expect(state.failure?.reason).toMatch(
      /^push of nightshift\/shared to acme \(http:\/\/127\.0\.0\.1:\d+\/acme\.git\) was rejected: .*\[rejected\].*\((fetch first|non-fast-forward)\)$/,
    );
    expect(state.failure?.reason.split('\n')).toHaveLength(1);
    expect(remoteGit('rev-parse', 'refs/heads/nightshift/shared').trim()).toBe(theirs);
  });
});
