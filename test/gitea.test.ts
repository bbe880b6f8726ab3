import { createHmac } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ForgeError } from '../forges/forge';
import { GiteaForge, giteaRepoOf } from '../forges/gitea';
import { type GiteaRepo, type GiteaServer, type GiteaUser, startGitea } from './helpers/gitea';

// The Gitea forge client against a real Gitea (built once into the tools dir by scripts/setup.sh --docker).

let gitea: GiteaServer;
let repo: GiteaRepo;
let alice: GiteaUser; // the owner
let bob: GiteaUser; // a collaborator with write
let carol: GiteaUser; // a collaborator with read
let dave: GiteaUser; // no collaborator

beforeAll(async () => {
  gitea = await startGitea();
  [alice, bob, carol, dave] = await Promise.all(
    ['alice', 'bob', 'carol', 'dave'].map((name) => gitea.createUser(name)),
  );
  repo = await gitea.createRepo('alice', 'widgets', {
    private: true,
    files: { 'README.md': '# widgets\n', '.nightshift.yml': 'agent: claude\n' },
  });
  await gitea.addCollaborator(repo.fullName, 'bob', 'write');
  await gitea.addCollaborator(repo.fullName, 'carol', 'read');
}, 600_000);

afterAll(async () => {
  await gitea?.stop();
});

const forgeAs = (user: GiteaUser, apiUrl?: string) =>
  new GiteaForge({
    ...giteaRepoOf(repo.cloneUrl)!,
    ...(apiUrl ? { apiUrl } : {}),
    token: user.token,
    timeoutMs: 10_000,
  });

test('giteaRepoOf finds the API of a clone URL, sub-path included', () => {
  expect(giteaRepoOf(repo.cloneUrl)).toEqual({ apiUrl: gitea.apiUrl, owner: 'alice', name: 'widgets' });
  expect(giteaRepoOf('https://git.example.com/forge/team/app')).toEqual({
    apiUrl: 'https://git.example.com/forge/api/v1',
    owner: 'team',
    name: 'app',
  });
  expect(giteaRepoOf('ssh://git@git.example.com:2222/team/app.git')).toEqual({
    apiUrl: 'https://git.example.com/api/v1',
    owner: 'team',
    name: 'app',
  });
  for (const bad of ['not a url', 'https://git.example.com/app', 'file:///srv/team/app.git', 'https://h/team/..'])
    expect(giteaRepoOf(bad)).toBeUndefined();
});

test('defaultBranch and readFile: a file at the default branch or a ref, none when absent, an error when the repo is hidden', async () => {
  const forge = forgeAs(bob);
  expect(await forge.defaultBranch()).toBe('main');
  expect(await forge.readFile('.nightshift.yml')).toBe('agent: claude\n');
  expect(await forge.readFile('absent.yml')).toBeUndefined();
  await gitea.push(repo, 'docs-change', { 'docs/guide.md': 'on a branch\n' });
  expect(await forge.readFile('docs/guide.md', 'docs-change')).toBe('on a branch\n');
  expect(await forge.readFile('docs/guide.md')).toBeUndefined();
  // dave is no collaborator: the private repo is a 404 to him, which must not read as "no such file".
  await expect(forgeAs(dave).readFile('.nightshift.yml')).rejects.toMatchObject({ name: 'ForgeError', status: 404 });
});

test('permission: owner admin, collaborators write and read, a stranger and a missing user none', async () => {
  const forge = forgeAs(alice);
  expect(await forge.permission('alice')).toBe('admin');
  expect(await forge.permission('bob')).toBe('write');
  expect(await forge.permission('carol')).toBe('read');
  expect(await forge.permission('dave')).toBe('none');
  expect(await forge.permission('nobody-here')).toBe('none');
  // A read-only token may not ask about others: Gitea's 403, not a guess.
  await expect(forgeAs(carol).permission('bob')).rejects.toMatchObject({ status: 403 });
});

test('openPullRequest opens one PR, and a second call finds it', async () => {
  const commit = await gitea.push(repo, 'nightshift/run-1', { 'feature.txt': 'one\n' }, { user: bob });
  const forge = forgeAs(bob);
  const input = { branch: 'nightshift/run-1', base: 'main', commit, title: 'Run 1', body: 'Made by Nightshift' };
  const first = await forge.openPullRequest(input);
  expect(first).toMatchObject({ created: true, url: `${gitea.url}/alice/widgets/pulls/${first.number}` });
  expect(await forge.openPullRequest(input)).toEqual({ ...first, created: false });
  expect(await pullsFor('nightshift/run-1')).toHaveLength(1);
  // A branch that is not there is Gitea's one-line refusal.
  const refused = await forge.openPullRequest({ ...input, branch: 'no-such-branch' }).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(ForgeError);
  expect((refused as ForgeError).message).not.toContain('\n');
});

test('openPullRequest after a lost response, or after a stale look, never opens a second PR', async () => {
  const forge = (proxyUrl: string) => forgeAs(bob, `${proxyUrl}/api/v1`);
  // The create reaches Gitea but its answer is lost: the call fails, the retry finds the PR.
  const lost = await startProxy((req) =>
    req.method === 'POST' && req.url!.endsWith('/pulls') ? 'drop-answer' : 'pass',
  );
  const commit = await gitea.push(repo, 'nightshift/run-2', { 'feature.txt': 'two\n' }, { user: bob });
  const input = { branch: 'nightshift/run-2', base: 'main', commit, title: 'Run 2', body: '' };
  try {
    await expect(forge(lost.url).openPullRequest(input)).rejects.toBeInstanceOf(ForgeError);
  } finally {
    await lost.close();
  }
  const retried = await forgeAs(bob).openPullRequest(input);
  expect(retried.created).toBe(false);
  expect(await pullsFor('nightshift/run-2')).toHaveLength(1);
  // Someone opened it between our look and our create: Gitea's 409, then the second look finds it.
  const stale = await startProxy((req) =>
    req.method === 'GET' && req.url!.includes('/pulls?') ? 'empty-list-once' : 'pass',
  );
  try {
    expect(await forge(stale.url).openPullRequest(input)).toEqual(retried);
  } finally {
    await stale.close();
  }
  expect(stale.seen).toContain('POST /api/v1/repos/alice/widgets/pulls 409');
  expect(await pullsFor('nightshift/run-2')).toHaveLength(1);
});

test('comment shows on the issue, by the token’s user', async () => {
  const issue = await gitea.api('POST', `/repos/${repo.fullName}/issues`, { body: { title: 'Do the thing' } });
  await forgeAs(bob).comment(issue.number, 'Nightshift started run **r-1**');
  const comments = await gitea.api<any[]>('GET', `/repos/${repo.fullName}/issues/${issue.number}/comments`);
  expect(comments.map((c) => [c.user.login, c.body])).toEqual([['bob', 'Nightshift started run **r-1**']]);
  await expect(forgeAs(bob).comment(999_999, 'nowhere')).rejects.toMatchObject({ status: 404 });
});

test('commitStatus combines the statuses set through Gitea', async () => {
  const forge = forgeAs(carol);
  expect(await forge.commitStatus(repo.head)).toEqual({ state: 'pending', statuses: [] });
  const setStatus = (context: string, state: string) =>
    gitea.api('POST', `/repos/${repo.fullName}/statuses/${repo.head}`, {
      body: { context, state, description: `${context} is ${state}`, target_url: `https://ci.example.com/${context}` },
    });
  await setStatus('ci/build', 'success');
  await setStatus('ci/test', 'pending');
  expect((await forge.commitStatus(repo.head)).state).toBe('pending');
  await setStatus('ci/test', 'success');
  const green = await forge.commitStatus(repo.head);
  expect(green.state).toBe('success');
  expect(green.statuses.sort((a, b) => a.context.localeCompare(b.context))).toEqual([
    {
      context: 'ci/build',
      state: 'success',
      description: 'ci/build is success',
      url: 'https://ci.example.com/ci/build',
    },
    { context: 'ci/test', state: 'success', description: 'ci/test is success', url: 'https://ci.example.com/ci/test' },
  ]);
  await setStatus('ci/lint', 'error');
  expect((await forge.commitStatus(repo.head)).state).toBe('failure');
});

test('a webhook reaches a loopback listener, signed with its secret, for labels, comments, reviews and statuses', async () => {
  const secret = 'webhook-secret-for-tests';
  const hook = await startListener();
  try {
    await gitea.addWebhook(repo.fullName, {
      url: hook.url,
      secret,
      events: ['issues', 'issue_comment', 'pull_request', 'pull_request_review', 'status'],
    });
    const issue = await gitea.api('POST', `/repos/${repo.fullName}/issues`, { body: { title: 'Hooked' } });
    const label = await gitea.api('POST', `/repos/${repo.fullName}/labels`, {
      body: { name: 'nightshift', color: '#00aabb' },
    });
    await gitea.api('POST', `/repos/${repo.fullName}/issues/${issue.number}/labels`, { body: { labels: [label.id] } });
    await gitea.api('POST', `/repos/${repo.fullName}/issues/${issue.number}/comments`, {
      token: bob.token,
      body: { body: '/nightshift' },
    });
    const pr = await forgeAs(alice).openPullRequest({
      branch: 'nightshift/run-3',
      base: 'main',
      commit: await gitea.push(repo, 'nightshift/run-3', { 'f.txt': '3\n' }),
      title: 'Run 3',
      body: '',
    });
    await gitea.api('POST', `/repos/${repo.fullName}/pulls/${pr.number}/reviews`, {
      token: bob.token,
      body: { event: 'APPROVED', body: 'ship it' },
    });
    await gitea.api('POST', `/repos/${repo.fullName}/pulls/${pr.number}/reviews`, {
      token: bob.token,
      body: { event: 'REQUEST_CHANGES', body: 'wait' },
    });
    await gitea.api('POST', `/repos/${repo.fullName}/statuses/${repo.head}`, {
      body: { context: 'ci/hook', state: 'failure', description: 'red' },
    });

    const types = [
      'issues',
      'issue_label',
      'issue_comment',
      'pull_request',
      'pull_request_review_approved',
      'pull_request_review_rejected',
      'status',
    ];
    const got = await hook.waitFor((ds) => types.every((t) => ds.some((d) => d.headers['x-gitea-event-type'] === t)));
    for (const d of got) {
      expect(d.headers['x-gitea-signature']).toBe(createHmac('sha256', secret).update(d.body).digest('hex'));
      expect(d.headers['x-gitea-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    }
    const of = (type: string) =>
      got
        .filter((d) => d.headers['x-gitea-event-type'] === type)
        .map((d) => ({ event: d.headers['x-gitea-event'], ...JSON.parse(d.body) }));
    expect(of('issues')[0]).toMatchObject({ event: 'issues', action: 'opened', number: issue.number });
    expect(of('issue_label')[0]).toMatchObject({
      event: 'issues',
      action: 'label_updated',
      number: issue.number,
      issue: { labels: [{ name: 'nightshift' }] },
      sender: { login: 'nsadmin' },
    });
    expect(of('issue_comment')[0]).toMatchObject({
      event: 'issue_comment',
      action: 'created',
      is_pull: false,
      issue: { number: issue.number },
      comment: { body: '/nightshift', user: { login: 'bob' } },
    });
    expect(of('pull_request_review_approved')[0]).toMatchObject({
      event: 'pull_request_approved',
      action: 'reviewed',
      number: pr.number,
      review: { type: 'pull_request_review_approved', content: 'ship it' },
      sender: { login: 'bob' },
      pull_request: { head: { ref: 'nightshift/run-3' } },
    });
    expect(of('pull_request_review_rejected')[0]).toMatchObject({
      event: 'pull_request_rejected',
      action: 'reviewed',
      review: { type: 'pull_request_review_rejected', content: 'wait' },
    });
    expect(of('status')[0]).toMatchObject({
      event: 'status',
      sha: repo.head,
      context: 'ci/hook',
      state: 'failure',
      repository: { full_name: 'alice/widgets' },
    });
    if (process.env.NIGHTSHIFT_GITEA_DUMP)
      require('node:fs').writeFileSync(process.env.NIGHTSHIFT_GITEA_DUMP, JSON.stringify(got, null, 1));
  } finally {
    await hook.close();
  }
});

async function pullsFor(branch: string): Promise<any[]> {
  const pulls = await gitea.api<any[]>('GET', `/repos/${repo.fullName}/pulls?state=all&limit=50`);
  return pulls.filter((p) => p.head.ref === branch);
}

interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A loopback HTTP listener that keeps every request it gets. */
async function startListener(): Promise<{
  url: string;
  waitFor(done: (ds: Delivery[]) => boolean): Promise<Delivery[]>;
  close(): Promise<void>;
}> {
  const deliveries: Delivery[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    async waitFor(done) {
      const deadline = Date.now() + 20_000;
      while (!done(deliveries)) {
        if (Date.now() > deadline)
          throw new Error(
            `webhook deliveries so far: ${deliveries.map((d) => d.headers['x-gitea-event-type']).join(', ') || 'none'}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
      return deliveries;
    },
    close: () => new Promise((r) => server.close(() => r()).closeAllConnections()),
  };
}

/**
 * A loopback proxy in front of Gitea that can lose an answer (Gitea did the work; the client hears nothing) or answer
 * a PR list with none once (a look that raced another opener). `seen`: "METHOD path status" of what it passed on.
 */
async function startProxy(
  plan: (req: http.IncomingMessage) => 'pass' | 'drop-answer' | 'empty-list-once',
): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  let emptied = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const what = plan(req);
      if (what === 'empty-list-once' && !emptied) {
        emptied = true;
        res.setHeader('Content-Type', 'application/json').end('[]');
        return;
      }
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k)),
      ) as Record<string, string>;
      const answer = await fetch(`${gitea.url}${req.url}`, {
        method: req.method,
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
      });
      const body = Buffer.from(await answer.arrayBuffer());
      seen.push(`${req.method} ${req.url!.split('?')[0]} ${answer.status}`);
      if (what === 'drop-answer') {
        req.socket.destroy();
        return;
      }
      res
        .writeHead(answer.status, { 'Content-Type': answer.headers.get('content-type') ?? 'application/json' })
        .end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise((r) => server.close(() => r()).closeAllConnections()),
  };
}
