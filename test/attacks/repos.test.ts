// Issue 11, "Repos have a boundary": a spec's repo is a git repository inside the server's repos dir, or refused
// before anything starts; a token limited to repos touches only those. Real API, worker, Temporal and git.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { resolveRepo } from '../../config/repoResolution';
import { runStartOptions } from '../../api/submit';
import { SpecSchema } from '../../spec/schema';
import { runCli } from '../helpers/cli';
import { freePort } from '../helpers/ports';
import { gitIn, makeRepo, startTestStack, tempDir, type TestStack } from '../helpers/stack';
import { spec, VALUE_REPO } from '../helpers/specs';

let stack: TestStack;
let reposDir: string;
/** A git repo outside the repos dir, with a ref whose name must never show up anywhere the server writes or answers. */
let outside: string;
const MARKER = `marker-${randomBytes(8).toString('hex')}`;
/** A loopback listener every remote form points at: it counts connections. */
let listener: net.Server;
let port: number;
let heard = 0;

/** A repo made by makeRepo, moved into the repos dir under `name`. */
function repoInside(name: string): string {
  const dir = path.join(reposDir, name);
  mkdirSync(path.dirname(dir), { recursive: true });
  renameSync(makeRepo(VALUE_REPO), dir);
  return dir;
}

beforeAll(async () => {
  reposDir = tempDir('repos');
  stack = await startTestStack({ env: { NIGHTSHIFT_REPOS_DIR: reposDir } });
  for (const name of ['billing', 'web-app', 'other']) repoInside(name);
  outside = makeRepo(VALUE_REPO);
  gitIn(outside, 'update-ref', `refs/heads/${MARKER}`, 'HEAD');
  // Links inside pointing out: to the outside repo, and to a directory holding it.
  symlinkSync(outside, path.join(reposDir, 'sneaky'));
  symlinkSync(path.dirname(outside), path.join(reposDir, 'up'));
  // A link inside pointing inside: fine, and named by where it points.
  symlinkSync(path.join(reposDir, 'other'), path.join(reposDir, 'billing-alias'));
  port = await freePort();
  listener = net.createServer((socket) => {
    heard++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(port, '127.0.0.1', resolve));
});
afterAll(async () => {
  await new Promise((resolve) => listener?.close(resolve));
  await stack?.stop();
});

/**
 * Runs started on this stack's task queue, as Temporal sees them once visibility has caught up (it lags a start: an
 * earlier test's run would otherwise show up between a test's two counts). Steady = the same over 600 ms.
 */
async function runCount(): Promise<number> {
  const count = async () =>
    (await stack.client.workflow.count(`WorkflowType = 'specRun' AND TaskQueue = '${stack.config.taskQueue}'`)).count;
  for (let last = await count(); ;) {
    await new Promise((r) => setTimeout(r, 600));
    const now = await count();
    if (now === last) return now;
    last = now;
  }
}

/** Every file under `dir` whose content holds `needle` (the server's home: logs, run logs, artifacts, sandboxes). */
function filesHolding(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() && statSync(p).size < 64 * 1024 * 1024 && readFileSync(p).includes(needle)) found.push(p);
    }
  };
  walk(dir);
  return found;
}

const outsideRefs = () => gitIn(outside, 'for-each-ref', '--format=%(refname) %(objectname)');

/** Submit `repo` as an admin would, and check it was refused before anything happened. */
async function expectRefused(repo: string, reason: RegExp): Promise<void> {
  const before = await runCount();
  const refsBefore = outsideRefs();
  const res = await stack.api('POST', '/v1/runs', { body: spec(repo, 'echo 2 > src/value.txt') });
  expect(res.status).toBe(400);
  expect(res.body.error.message.split('\n')).toHaveLength(1);
  expect(res.body.error.message).toMatch(/^invalid spec: repo: /);
  expect(res.body.error.issues).toEqual([{ field: 'repo', message: expect.stringMatching(reason) }]);
  expect(res.text).not.toContain(MARKER);
  // Give a worker that got it anyway time to dial or read.
  await new Promise((r) => setTimeout(r, 300));
  expect(await runCount()).toBe(before);
  expect(outsideRefs()).toBe(refsBefore);
  expect(heard).toBe(0);
}

const OUTSIDE = /is outside the server's repos directory \(NIGHTSHIFT_REPOS_DIR\)$/;

describe("a repo outside the server's repos dir is refused (400 naming repo), starts nothing, reads nothing", () => {
  const cases: [string, () => string][] = [
    ['an absolute path to a repo outside', () => outside],
    ['a file:// URL of a repo outside', () => `file://${outside}`],
    ['"../" climbing out of the repos dir', () => `../${path.basename(outside)}`],
    ['"../" climbing out through a repo inside', () => `billing/../../${path.basename(outside)}`],
    ['an absolute path that climbs out from inside', () => `${reposDir}/billing/../../${path.basename(outside)}`],
    ['a symlink inside the repos dir pointing at a repo outside', () => 'sneaky'],
    ['the same symlink by absolute path', () => path.join(reposDir, 'sneaky')],
    ['the same symlink as a file:// URL', () => `file://${path.join(reposDir, 'sneaky')}`],
    ['a path through a symlinked directory that leads out', () => `up/${path.basename(outside)}`],
    ['/etc', () => '/etc'],
  ];
  test.each(cases)('%s → 400 outside the repos dir; the outside repo untouched', async (_name, repo) => {
    await expectRefused(repo(), OUTSIDE);
  });

  test("after all of them, the outside repo's marker ref is nowhere in the server's home (nothing fetched or logged it)", async () => {
    expect(filesHolding(stack.config.home, MARKER)).toEqual([]);
  });
});

describe('every remote form is refused (400 naming repo): nothing starts, the loopback listener hears nothing', () => {
  const touched = () => path.join(reposDir, '..', 'touched-by-a-remote');
  const cases: [string, () => string][] = [
    ['http://', () => `http://127.0.0.1:${port}/x.git`],
    ['https://', () => `https://127.0.0.1:${port}/x.git`],
    ['git://', () => `git://127.0.0.1:${port}/x.git`],
    ['ssh://', () => `ssh://git@127.0.0.1:${port}/x.git`],
    ['scp-like user@host:path', () => `git@127.0.0.1:x.git`],
    ['scp-like host:path', () => `127.0.0.1:x.git`],
    ['a relative name git would read as host:path', () => `billing:x`],
    ['ext:: (runs a command)', () => `ext::sh -c touch% ${touched()}`],
    ['fd::', () => 'fd::3'],
    ['a transport helper <helper>::<address>', () => `http::127.0.0.1:${port}/x.git`],
    ['file:// with a host', () => `file://127.0.0.1${outside}`],
    ['an option for git (--upload-pack)', () => `--upload-pack=touch ${touched()}`],
    ['an option for ssh (-oProxyCommand)', () => `-oProxyCommand=touch ${touched()}`],
  ];
  test.each(cases)('%s → 400; listener silent; no command ran', async (_name, repo) => {
    await expectRefused(repo(), /remote|begins with "-"/);
    expect(existsSync(touched())).toBe(false);
  });
});

describe('inside the repos dir', () => {
  test('a name relative to the repos dir is accepted and stored as the real path; a link inside counts as its target', async () => {
    const id = await stack.submit(spec('billing', 'echo 2 > src/value.txt'));
    const stored = (await stack.waitFor(id, ['awaiting_approval'])).repo;
    expect(stored).toBe(path.join(reposDir, 'billing'));
    // What a worker's provision checks again: the stored path passes as itself.
    expect(resolveRepo(stored, reposDir)).toEqual({ path: stored, name: 'billing' });
    const viaLink = await stack.submit(
      spec('billing-alias', 'echo 2 > src/value.txt', { approval: { required: false } }),
    );
    expect((await stack.state(viaLink)).repo).toBe(path.join(reposDir, 'other'));
    await stack.api('POST', `/v1/runs/${id}/reject`, { body: {} });
  });

  test('a directory inside that is not a git repository → 400, nothing starts', async () => {
    mkdirSync(path.join(reposDir, 'plain-dir'));
    await expectRefused('plain-dir', /is not a git repository in the server's repos directory$/);
  });
});

describe('a token limited to repos (token add --repos)', () => {
  let limited: string;
  /** A run on "other", awaiting approval, submitted with the admin token. */
  let otherRun: string;
  beforeAll(async () => {
    const add = await runCli(['token', 'add', 'billing-bot', '--role', 'approver', '--repos', 'billing*, web-*'], {
      NIGHTSHIFT_HOME: stack.config.home,
    });
    expect(add.code).toBe(0);
    limited = add.stdout.trim();
    otherRun = await stack.submit(spec('other', 'echo 2 > src/value.txt'));
    await stack.waitFor(otherRun, ['awaiting_approval']);
  });

  test('token ls shows the limits', async () => {
    const ls = await runCli(['token', 'ls', '--json'], { NIGHTSHIFT_HOME: stack.config.home });
    expect(JSON.parse(ls.stdout).tokens).toContainEqual({
      name: 'billing-bot',
      role: 'approver',
      repos: ['billing*', 'web-*'],
    });
    expect((await runCli(['token', 'ls'], { NIGHTSHIFT_HOME: stack.config.home })).stdout).toMatch(
      /^billing-bot\s+approver\s+billing\*,web-\*\s+none$/m,
    );
    expect(await stack.api('GET', '/v1/me', { token: limited })).toMatchObject({
      status: 200,
      body: { name: 'billing-bot', role: 'approver', repos: ['billing*', 'web-*'] },
    });
  });

  test('submitting to its repos → 202 (a glob matches too)', async () => {
    for (const repo of ['billing', path.join(reposDir, 'web-app')]) {
      const res = await stack.api('POST', '/v1/runs', {
        body: spec(repo, 'true', { approval: { required: false } }),
        token: limited,
      });
      expect(res.status).toBe(202);
    }
  });

  const submits: [string, string][] = [
    ['another repo', 'other'],
    ['another repo spelled through one of its own ("billing/../other")', 'billing/../other'],
    ['a link whose name matches its globs pointing at another ("billing-alias" → other)', 'billing-alias'],
  ];
  test.each(submits)('submitting to %s → 403 in one line; nothing starts', async (_name, repo) => {
    const before = await runCount();
    const res = await stack.api('POST', '/v1/runs', { body: spec(repo, 'true'), token: limited });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toBe(
      'token "billing-bot" is limited to repos billing*, web-*; repo other is not in them',
    );
    expect(await runCount()).toBe(before);
  });

  test('creating a schedule for another repo → 403; no schedule exists', async () => {
    const res = await stack.api('POST', '/v1/schedules', {
      body: { id: `limited-${MARKER}`, cron: '0 3 * * *', spec: spec('other', 'true'), paused: true },
      token: limited,
    });
    expect(res.status).toBe(403);
    const ids: string[] = [];
    for await (const s of stack.client.schedule.list()) ids.push(s.scheduleId);
    expect(ids).not.toContain(`limited-${MARKER}`);
  });

  test('a schedule of another repo: the limited token cannot see, trigger or delete it; it stays', async () => {
    const id = `other-${MARKER}`.slice(0, 40);
    expect(
      (
        await stack.api('POST', '/v1/schedules', {
          body: { id, cron: '0 3 * * *', spec: spec('other', 'true'), paused: true },
        })
      ).status,
    ).toBe(201);
    try {
      expect(
        (await stack.api('GET', '/v1/schedules', { token: limited })).body.schedules.map((s: { id: string }) => s.id),
      ).not.toContain(id);
      expect((await stack.api('POST', `/v1/schedules/${id}/trigger`, { token: limited })).status).toBe(403);
      expect((await stack.api('DELETE', `/v1/schedules/${id}`, { token: limited })).status).toBe(403);
      const d = await stack.client.schedule.getHandle(id).describe();
      expect(d.info.recentActions).toHaveLength(0);
    } finally {
      await stack.client.schedule.getHandle(id).delete();
    }
  });

  test.each(['approve', 'reject', 'request-changes', 'cancel'])(
    "%s on another repo's run → 403; the run still awaits approval",
    async (decision) => {
      const res = await stack.api('POST', `/v1/runs/${otherRun}/${decision}`, {
        body: { comment: 'by the limited token' },
        token: limited,
      });
      expect(res.status).toBe(403);
      expect(res.body.error.message).toBe(
        `token "billing-bot" is limited to repos billing*, web-*; run ${otherRun} is not in them`,
      );
      const state = await stack.state(otherRun);
      expect(state.status).toBe('awaiting_approval');
      expect(state.decisions).toEqual([]);
    },
  );

  test("reading another repo's run (state, logs, diff, events, proof) → 403; the list leaves it out", async () => {
    for (const route of ['', '/logs', '/diff', '/events', '/proof']) {
      const res = await stack.api('GET', `/v1/runs/${otherRun}${route}`, { token: limited });
      expect([route, res.status]).toEqual([route, 403]);
      expect(res.text).not.toContain('Set the value to two');
    }
    const listed = (await stack.api('GET', '/v1/runs?limit=1000', { token: limited })).body.runs;
    expect(listed.map((r: { id: string }) => r.id)).not.toContain(otherRun);
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((r: { repo: string }) => /\/(billing|web-app)$/.test(r.repo))).toBe(true);
    // The admin is not limited.
    expect((await stack.api('GET', `/v1/runs/${otherRun}/diff`)).status).toBe(200);
  });

  test('--repos cannot limit an admin token', async () => {
    const add = await runCli(['token', 'add', 'root-ish', '--role', 'admin', '--repos', 'billing'], {
      NIGHTSHIFT_HOME: stack.config.home,
    });
    expect(add.code).toBe(2);
    expect(readFileSync(path.join(stack.config.home, 'tokens.json'), 'utf8')).not.toContain('root-ish');
  });
});

describe('the worker checks the boundary again: a run started straight through Temporal (bypassing the API) gets nothing', () => {
  /** A run started as the API would, but with whatever repo the caller likes. */
  async function startDirectly(repo: string): Promise<string> {
    const input = {
      spec: SpecSchema.parse(spec(repo, 'echo 2 > src/value.txt')),
      specDigest: 'direct',
      submittedBy: 'temporal',
      settings: { heartbeatTimeoutMs: 5000, workerQueueTimeoutMs: 20_000, maxReprovisions: 0 },
    };
    const id = `direct-${randomBytes(6).toString('hex')}`;
    await stack.client.workflow.start('specRun', { ...runStartOptions(input, stack.config), workflowId: id });
    return id;
  }

  test.each([
    ['an absolute path outside', () => outside, /is outside the server's repos directory/],
    ['a link inside pointing out', () => path.join(reposDir, 'sneaky'), /is outside the server's repos directory/],
    ['a remote URL to a loopback listener', () => `http://127.0.0.1:${port}/x.git`, /is a remote/],
    [
      'an ext:: transport that would run a command',
      () => `ext::sh -c touch% ${path.join(reposDir, 'pwned-direct')}`,
      /is a remote/,
    ],
  ])('%s → fails at provision; nothing cloned, read or dialled', async (_what, repoOf, reason) => {
    const refsBefore = outsideRefs();
    const id = await startDirectly(repoOf());
    const failed = await stack.waitFor(id, ['failed']);
    expect(failed.failure?.stage).toBe('provision');
    expect(failed.failure?.reason).toMatch(reason);
    expect(filesHolding(stack.config.home, MARKER)).toEqual([]);
    expect(existsSync(path.join(stack.config.home, 'work', stack.workerName!, id))).toBe(false);
    expect(existsSync(path.join(reposDir, 'pwned-direct'))).toBe(false);
    expect(outsideRefs()).toBe(refsBefore);
    expect(heard).toBe(0);
  });
});
