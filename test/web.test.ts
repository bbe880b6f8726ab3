import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import * as path from 'node:path';
import pino from 'pino';
import type { Browser, Page } from 'playwright-core';
import { closeServer, createApi } from '../api/server';
import type { FleetSnapshot } from '../api/fleet';
import type { Principal as ServerPrincipal } from '../api/tokens';
import { unpackTarGz } from '../proof/tar';
import { RUN_STATUSES, type RunStateView } from '../contracts/run';
import type {
  CampaignView,
  FleetView,
  Principal,
  RepoAddedView,
  RepoDefaultsView,
  RepoView,
  RunView,
  SpendView,
} from '../web/api-types';
import type { CampaignView as ServerCampaignView } from '../api/campaigns';
import type { z } from 'zod';
import type { RepoDefaultsSchema } from '../api/repoDefaults';
import type { SpendSummary } from '../budget/spendView';
import type { RepoAddedSchema, RepoListingSchema } from '../api/repoRoutes';
import {
  expectNoHorizontalOverflow,
  launchChromium,
  openPhone as openPhoneAt,
  PHONE_WIDTH as WIDTH,
  shot,
  shownText,
  signIn,
  SHOTS,
} from './helpers/phone';
import { freePort } from './helpers/ports';
import { makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { startedSpec, VALUE_REPO, VALUE_SETTINGS } from './helpers/specs';

// The page's picture of the API's JSON (web/api-types.d.ts) must fit what the server sends: a drift fails the build.
type Fits<Sent extends Read, Read> = Sent;
export type RunStateFitsRunView = Fits<RunStateView, RunView>;
export type PrincipalFits = Fits<ServerPrincipal, Principal>;
export type FleetFitsFleetView = Fits<FleetSnapshot, FleetView>;
export type RepoDefaultsFit = Fits<z.infer<typeof RepoDefaultsSchema>, RepoDefaultsView>;
export type RepoListingFits = Fits<z.infer<typeof RepoListingSchema>, RepoView>;
export type RepoAddedFits = Fits<z.infer<typeof RepoAddedSchema>, RepoAddedView>;
export type CampaignFits = Fits<ServerCampaignView, CampaignView>;
export type SpendFits = Fits<SpendSummary, SpendView>;

let stack: TestStack;
let repo: string;
let browser: Browser;
beforeAll(async () => {
  stack = await startTestStack();
  repo = makeRepo(VALUE_REPO);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  console.log(`web page screenshots: ${SHOTS}`);
});

/**
 * A Markdown spec whose command agent prints a line a second for `seconds`, then sets the value (the check wants 2).
 */
function markdownSpec(title: string, seconds: number): string {
  return [
    '---',
    `title: ${title}`,
    `repo: ${repo}`,
    'agent:',
    '  kind: command',
    '  command:',
    '    - sh',
    '    - -c',
    `    - 'for i in $(seq 1 ${seconds}); do echo "working on step $i"; sleep 1; done; echo 2 > src/value.txt'`,
    'scope: { allow: ["src/**"] }',
    'checks:',
    '  - { name: value, run: "test $(cat src/value.txt) = 2" }',
    '---',
    'Make src/value.txt contain 2.',
    '',
  ].join('\n');
}

/** A phone-sized page of the stack's web UI (or of the API at `apiUrl`), signed in with `token` when given. */
const openPhone = (token?: string, hash = '', apiUrl = stack.apiUrl) => openPhoneAt(browser, apiUrl, token, hash);

/**
 * Picks `name` in the quick form, once its list of repos is in (a list where the server lists repos, else a text
 * field).
 */
async function pickRepo(page: Page, name: string): Promise<void> {
  await page.waitForSelector('#quick-run .repo-field[aria-busy="false"]');
  if ((await page.$eval('#quick-repo', (el) => el.tagName)) === 'SELECT') {
    await page.selectOption('#quick-repo', name);
    return;
  }
  await page.fill('#quick-repo', name);
  await page.focus('#quick-task');
}

const statusOf = (page: Page) => page.getAttribute('#run-header [data-status]', 'data-status');

test('from a phone: sign in, submit a spec, watch the live log move to awaiting_approval, read the diff, approve, download the proof', async () => {
  const { page, problems } = await openPhone();
  await page.waitForSelector('#signin');
  await shot(page, '01-sign-in');

  await page.fill('#token', 'ns_not-a-real-token');
  await page.click('#signin button[type=submit]');
  expect(await shownText(page, '#signin-error')).toBe('invalid token');
  await shot(page, '02-sign-in-bad-token');
  await page.fill('#token', stack.token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#runs');
  expect(await page.textContent('#who')).toBe('admin · admin');
  await shot(page, '03-runs');

  await page.click('#nav a[href="#/new"]');
  expect(await page.inputValue('#spec-editor')).toMatch(/^---\ntitle: .*\nrepo: /);
  // The whole spec as YAML is folded under the quick form.
  expect(await page.isVisible('#spec-editor')).toBe(false);
  await page.click('#advanced > summary');
  await page.fill('#spec-editor', markdownSpec('Set the value from a phone', 6));
  await shot(page, '04-new-spec');
  await page.click('#submit-spec');
  await page.waitForURL(/#\/runs\/ns-[0-9a-f]{12}$/);
  const id = new URL(page.url()).hash.slice('#/runs/'.length);
  await page.waitForSelector('#run-header h1');
  expect(await page.textContent('#run-header h1')).toBe('Set the value from a phone');

  // The log box grows while the agent works, before the run awaits approval.
  const lengths: number[] = [];
  let midRunShot = false;
  const deadline = Date.now() + 90_000;
  while ((await statusOf(page)) !== 'awaiting_approval') {
    expect(Date.now()).toBeLessThan(deadline);
    expect(await statusOf(page)).not.toMatch(/failed|cancelled|rejected|timed_out/);
    const length = (await page.textContent('#log'))!.length;
    if (length !== lengths[lengths.length - 1]) lengths.push(length);
    if (!midRunShot && /working on step 3/.test((await page.textContent('#log'))!)) {
      await shot(page, '05-run-live-log');
      midRunShot = true;
    }
    await page.waitForTimeout(200);
  }
  expect(lengths.filter((n) => n > 0).length).toBeGreaterThanOrEqual(3);
  expect(lengths).toEqual([...lengths].sort((a, b) => a - b));
  const log = (await page.textContent('#log'))!;
  expect(log).toContain('working on step 1');
  expect(log).toContain('working on step 6');
  expect(await page.getAttribute('#log', 'class')).toContain('scrollbox');
  // Scrolled to the end as lines came in.
  expect(await page.$eval('#log', (el) => el.scrollHeight - el.scrollTop - el.clientHeight)).toBeLessThan(48);
  const stages = await page.$$eval('#timeline li', (items) => items.map((li) => li.textContent ?? ''));
  expect(stages.find((s) => s.startsWith('agent'))).toMatch(/passed · [0-9.]+ s/);
  expect(stages.some((s) => s.startsWith('checks'))).toBe(true);
  expect(await page.textContent('#checks')).toContain('✓ value · exit 0');
  expect(await page.isVisible('#approve')).toBe(true);
  expect(await page.isVisible('#cancel')).toBe(true);
  await expectNoHorizontalOverflow(page);
  await shot(page, '06-awaiting-approval');

  await page.click('#show-diff');
  await page.waitForSelector('#diff .add');
  expect(await page.$$eval('#diff .del', (els) => els.map((e) => e.textContent))).toContain('-1\n');
  expect(await page.$$eval('#diff .add', (els) => els.map((e) => e.textContent))).toContain('+2\n');
  expect(await page.textContent('#diff')).toContain('src/value.txt');
  await expectNoHorizontalOverflow(page);
  await page.locator('#diff').scrollIntoViewIfNeeded();
  await shot(page, '07-diff');

  await page.fill('#comment', 'ship it from the phone');
  await page.click('#approve');
  await page.waitForSelector('#run-header [data-status="succeeded"]', { timeout: 60_000 });
  await page.waitForSelector('#stream:text("ended: succeeded")');
  expect(await page.isVisible('#approve')).toBe(false);
  expect(await page.isVisible('#cancel')).toBe(false);
  expect(await page.textContent('#actions .decisions')).toMatch(/^approve by admin, .*: ship it from the phone$/);

  await page.waitForSelector('#download-proof');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-proof')]);
  expect(download.suggestedFilename()).toBe(`${id}-proof.tar.gz`);
  const bundle = readFileSync((await download.path())!);
  expect([...bundle.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
  const manifest = JSON.parse((await unpackTarGz(bundle)).get('manifest.json')!.toString());
  expect(manifest).toMatchObject({
    runId: id,
    approval: { kind: 'approve', comment: 'ship it from the phone', by: 'admin' },
  });
  await page.waitForSelector('#proof-status:text("Downloaded")');
  expect(await page.textContent('#proof-status')).toContain('its sha256 matches the run’s proof id');
  await expectNoHorizontalOverflow(page);
  await page.locator('#proof').scrollIntoViewIfNeeded();
  await shot(page, '08-succeeded-proof');
  expect(problems).toEqual([]);
  await page.context().close();
});

test('a spec with an error shows the issue beside the editor and starts no run', async () => {
  const { page, problems } = await openPhone(stack.token, '#/new');
  const count = () => stack.client.workflow.count(`TaskQueue = '${stack.config.taskQueue}'`).then((c) => c.count);
  const before = await count();
  const bad = markdownSpec('Unknown agent', 1).replace('kind: command', 'kind: gpt-pilot');
  await page.click('#advanced > summary');
  await page.fill('#spec-editor', bad);
  await page.click('#submit-spec');
  await page.waitForSelector('.issues li');
  expect(await page.textContent('.issues li')).toMatch(/^line 5agent\.kind Invalid option/);
  expect(await page.locator('.issues li').count()).toBe(1);
  expect(new URL(page.url()).hash).toBe('#/new');
  expect(await page.inputValue('#spec-editor')).toBe(bad);
  await expectNoHorizontalOverflow(page);
  await shot(page, '09-spec-error');
  expect(await count()).toBe(before);
  expect(problems).toEqual([]);
  await page.context().close();
});

test("from a phone without YAML: pick the repo, type a title and the task; the repo's settings folded, editable; the run has them all", async () => {
  const name = path.relative(stack.config.reposDir, makeRepo({ ...VALUE_REPO, '.nightshift.yml': VALUE_SETTINGS }));
  const { page, problems } = await openPhone(stack.token, '#/new');
  await pickRepo(page, name);
  await page.waitForSelector('#defaults-source:text("from the repo\'s .nightshift.yml")');
  // Folded: the settings are there, not in the way.
  expect(await page.isVisible('#quick-overrides')).toBe(false);
  await page.fill('#quick-title', 'Two from the quick form');
  await page.fill('#quick-task', 'Make src/value.txt contain 2.\nTyped on a phone.');
  await shot(page, '15-quick-form');
  await page.click('#quick-defaults > summary');
  const settings = await page.inputValue('#quick-overrides');
  expect(settings).toContain('name: value');
  expect(settings).toMatch(/^repo: /);
  await page.fill('#quick-overrides', settings.replace('iterations: 2', 'iterations: 1'));
  await shot(page, '16-quick-form-settings');

  // Every control is a 44 px tap target, and nothing is wider than the phone.
  const heights = await page.$$eval(
    '#quick-repo, #quick-title, #quick-task, #quick-defaults > summary, #submit-quick, #advanced > summary, #nav nav a',
    (els) => els.map((el) => [el.id || el.textContent, Math.round(el.getBoundingClientRect().height)] as const),
  );
  expect(heights.filter(([, height]) => height < 44)).toEqual([]);
  expect(heights.length).toBeGreaterThanOrEqual(10);
  expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(WIDTH);

  await page.click('#submit-quick');
  await page.waitForURL(/#\/runs\/ns-[0-9a-f]{12}$/);
  const id = new URL(page.url()).hash.slice('#/runs/'.length);
  const spec = await startedSpec(stack.client, id);
  expect(spec).toMatchObject({
    title: 'Two from the quick form',
    task: 'Make src/value.txt contain 2.\nTyped on a phone.',
    agent: { kind: 'command', command: ['sh', '-c', 'echo 2 > src/value.txt'] },
    scope: { allow: ['src/**'] },
    checks: [{ name: 'value', run: 'test $(cat src/value.txt) = 2' }],
    limits: { iterations: 1 },
  });
  expect(spec.repo).toBe(path.join(stack.config.reposDir, name));
  await page.waitForSelector('#run-header [data-status="awaiting_approval"]', { timeout: 90_000 });
  expect(await page.textContent('#checks')).toContain('✓ value · exit 0');
  expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(WIDTH);
  await shot(page, '17-quick-run');
  expect(problems).toEqual([]);
  await page.context().close();
  await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'test over' } });
});

test("the quick form shows a repo's broken .nightshift.yml in one line, and an override's problem with its line", async () => {
  const broken = path.relative(
    stack.config.reposDir,
    makeRepo({ ...VALUE_REPO, '.nightshift.yml': 'agent: { kind: command\n' }),
  );
  const good = path.relative(stack.config.reposDir, makeRepo({ ...VALUE_REPO, '.nightshift.yml': VALUE_SETTINGS }));
  const { page, problems } = await openPhone(stack.token, '#/new');
  await pickRepo(page, broken);
  await page.waitForSelector('#defaults-source.error');
  expect(await page.textContent('#defaults-source')).toMatch(
    new RegExp(`^repo ${broken}: \\.nightshift\\.yml: spec at line \\d: invalid YAML`),
  );
  await pickRepo(page, good);
  await page.waitForSelector('#defaults-source:not(.error)');
  await page.fill('#quick-task', 'Anything.');
  await page.click('#quick-defaults > summary');
  await page.fill('#quick-overrides', 'limits:\n  iterations: 99\n');
  await page.click('#submit-quick');
  await page.waitForSelector('#quick-run .issues li');
  expect(await page.textContent('#quick-run .issues li')).toMatch(/^line 2limits\.iterations /);
  expect(new URL(page.url()).hash).toBe('#/new');
  expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(WIDTH);
  await shot(page, '18-quick-form-error');
  expect(problems).toEqual([]);
  await page.context().close();
});

test('a viewer following a run link signs in, sees the run and no decision buttons, and cannot submit', async () => {
  const id = await stack.submit(markdownSpec('Waiting for someone else', 1));
  await stack.waitFor(id, ['awaiting_approval']);
  const viewer = stack.tokens.create('phone-viewer', 'viewer');
  // The link a notification carries: the page asks for a token, then shows that run.
  const { page, problems } = await openPhone(undefined, `#/runs/${id}`);
  await signIn(page, viewer);
  await page.waitForSelector('#run-header [data-status="awaiting_approval"]');
  expect(await page.isVisible('#approve')).toBe(false);
  expect(await page.isVisible('#reject')).toBe(false);
  expect(await page.isVisible('#cancel')).toBe(false);
  expect(await page.textContent('#read-only')).toBe(
    'Signed in as phone-viewer (viewer): you can follow this run but not decide on it.',
  );
  await shot(page, '10-viewer-run');

  await page.click('#nav a[href="#/new"]');
  await page.click('#advanced > summary');
  await page.click('#submit-spec');
  expect(await shownText(page, '#new-spec .spec-errors .error')).toBe(
    'token "phone-viewer" is a viewer; this needs submitter',
  );
  expect(problems).toEqual([]);
  await page.context().close();
  await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'test over' } });
});

test('a decision sent to Temporal directly in the name of "alice" shows as unverified, via Temporal, beside the name', async () => {
  const id = await stack.submit(markdownSpec('Decided elsewhere', 1));
  await stack.waitFor(id, ['awaiting_approval']);
  await stack.client.workflow.getHandle(id).signal('reject', { comment: 'forged', by: 'alice', sig: 'AAAA' });
  await stack.waitFor(id, ['rejected']);
  const { page, problems } = await openPhone(stack.token, `#/runs/${id}`);
  await page.waitForSelector('#run-header [data-status="rejected"]');
  expect(await page.textContent('#actions .decisions')).toMatch(
    /^reject by alice \(unverified, via Temporal\), .*: forged$/,
  );
  expect(await page.isVisible('#actions .decisions .unverified')).toBe(true);
  await shot(page, '11-unverified-decision');
  expect(problems).toEqual([]);
  await page.context().close();
});

test("a plan's page at 390 px: its graph, each task by depth with its state and run, the integration last; a task's page links back", async () => {
  const files = makeRepo({ 'src/.keep': '' });
  const task = (id: string, needs: string[]) => ({
    id,
    task: `write ${id}`,
    needs,
    agent: { kind: 'command', command: ['sh', '-c', `echo ${id} > src/${id}.txt`] },
  });
  const long = 'the-api-endpoint-with-a-name-this-long';
  const id = await stack.submit({
    title: 'A plan on a phone',
    task: 'Write the files.',
    repo: files,
    agent: { kind: 'command', command: ['true'] },
    scope: { allow: ['src/**'] },
    tasks: [task('schema', []), task(long, ['schema']), task('worker', ['schema']), task('docs', [long, 'worker'])],
  });
  await stack.waitFor(id, ['awaiting_approval'], 180_000);
  const { page, problems } = await openPhone(stack.token, `#/runs/${id}`);
  await page.waitForSelector('#task-graph [data-task="integration"] [data-status="awaiting_approval"]');
  const rows = await page.$$eval('#task-graph li', (lis) =>
    lis.map((li) => ({
      task: li.getAttribute('data-task'),
      depth: li.getAttribute('data-depth'),
      status: li.querySelector('.status')?.getAttribute('data-status'),
      run: li.querySelector('a')?.getAttribute('data-run'),
      left: li.getBoundingClientRect().left,
    })),
  );
  expect(rows.map(({ left: _, ...r }) => r)).toEqual([
    { task: 'schema', depth: '0', status: 'passed', run: `${id}-schema` },
    { task: long, depth: '1', status: 'passed', run: `${id}-${long}` },
    { task: 'worker', depth: '1', status: 'passed', run: `${id}-worker` },
    { task: 'docs', depth: '2', status: 'passed', run: `${id}-docs` },
    { task: 'integration', depth: '3', status: 'awaiting_approval', run: `${id}-integration` },
  ]);
  // Deeper is further right: the graph reads as a tree.
  const left = rows.map((r) => r.left);
  expect(left[0] < left[1] && left[1] === left[2] && left[2] < left[3] && left[3] < left[4]).toBe(true);
  await expectNoHorizontalOverflow(page);
  await shot(page, '15-plan-graph');
  // A task's page says whose task it is, and links back.
  await page.click('#task-graph [data-task="worker"] a');
  await page.waitForSelector(`#run-header a[data-run="${id}"]`);
  expect(await page.textContent('#run-header')).toContain(`task worker of plan ${id}`);
  expect(problems).toEqual([]);
  await page.context().close();
  await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'test over' } });
}, 240_000);

test("a `tasks: auto` plan's page: the proposed tasks, each with its text, and the approver's buttons; approved there, they run", async () => {
  const tasks = [
    { id: 'schema', task: 'Store amounts as integer cents, everywhere they are kept.', needs: [] },
    { id: 'api', task: 'Serve cents.', needs: ['schema'] },
  ];
  const planner = `mkdir -p .nightshift && printf '%s' '${JSON.stringify({ tasks })}' > .nightshift/tasks.json`;
  const id = await stack.submit({
    title: 'A proposed plan on a phone',
    task: 'Bill in cents.',
    repo: makeRepo({ 'src/.keep': '' }),
    agent: { kind: 'command', command: ['sh', '-c', planner] },
    tasks: 'auto',
  });
  await stack.waitFor(id, ['awaiting_plan_approval'], 120_000);
  const { page, problems } = await openPhone(stack.token, `#/runs/${id}`);
  await page.waitForSelector('#task-graph [data-task="api"] .what');
  expect(await page.textContent('#task-graph [data-task="schema"] .what')).toBe(tasks[0].task);
  expect(await page.textContent('#tasks .proposal')).toBe('proposed by the agent');
  await expectNoHorizontalOverflow(page);
  expect([await page.isVisible('#approve'), await page.isVisible('#request-changes')]).toEqual([true, false]);
  await shot(page, '17-plan-proposed');
  await page.click('#approve');
  await stack.waitFor(id, ['running_tasks', 'awaiting_approval'], 60_000);
  expect((await stack.state(id)).decisions).toMatchObject([{ kind: 'approve', by: 'admin' }]);
  expect(problems).toEqual([]);
  await page.context().close();
  await stack.api('POST', `/v1/runs/${id}/cancel`, {});
}, 240_000);

test("a campaign's page at 390 px: its counts, the burndown falling as repos end, a line per repo linking its run; retry shown for a failed one", async () => {
  const ok = makeRepo({ 'src/value.txt': '1\n' });
  const broken = makeRepo({ 'src/value.txt': '1\n', 'src/locked': '' });
  const started = await stack.api('POST', '/v1/campaigns', {
    body: {
      title: 'Values on a phone',
      task: 'Make src/value.txt contain 2.',
      agent: { kind: 'command', command: ['sh', '-c', 'echo 2 > src/value.txt'] },
      checks: [{ name: 'unlocked', run: 'test ! -e src/locked' }],
      limits: { iterations: 1 },
      approval: { required: false },
      repos: [ok, broken],
    },
  });
  expect(started.status).toBe(201);
  const { id } = started.body;
  for (let i = 0; i < 240; i++) {
    if ((await stack.api('GET', `/v1/campaigns/${id}`)).body.status === 'partial') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const { page, problems } = await openPhone(stack.token, `#/campaigns/${id}`);
  await page.waitForSelector('#campaign-repos li[data-state="failed"]');
  expect(await page.textContent('#campaign-header h1')).toBe('Values on a phone');
  expect(
    await page.$$eval('#campaign-counts li', (lis) => lis.map((li) => [li.getAttribute('data-state'), li.textContent])),
  ).toEqual([
    ['succeeded', 'succeeded 1'],
    ['failed', 'failed 1'],
  ]);
  expect(await page.$$eval('#campaign-repos li', (lis) => lis.map((li) => li.getAttribute('data-state')))).toEqual([
    'succeeded',
    'failed',
  ]);
  // The burndown ends at the bottom: no repo open.
  const points = (await page.getAttribute('#burndown polyline', 'points'))!.split(' ');
  expect(points.length).toBeGreaterThan(2);
  expect(points.at(-1)!.split(',')[1]).toBe('120.0');
  expect(await page.isVisible('#campaign-retry')).toBe(true);
  expect(await page.isVisible('#campaign-approve')).toBe(false);
  await expectNoHorizontalOverflow(page);
  await shot(page, '18-campaign');
  // A repo's run links back to its campaign.
  await page.click('#campaign-repos li[data-state="failed"] a[data-run]');
  await page.waitForSelector(`#run-header a[href="#/campaigns/${id}"]`);
  expect(problems).toEqual([]);
  await page.context().close();
}, 240_000);

test('the runs list filters by status and shows a new run without a reload', async () => {
  const waiting = await stack.submit(markdownSpec('Waiting in the list', 1));
  await stack.waitFor(waiting, ['awaiting_approval']);
  const { page, problems } = await openPhone(stack.token, '#/runs');
  expect(await page.$$eval('#status-filter option', (os) => os.map((o) => o.getAttribute('value')))).toEqual([
    '',
    ...RUN_STATUSES,
  ]);
  await page.selectOption('#status-filter', 'awaiting_approval');
  await page.waitForURL(/#\/runs\?status=awaiting_approval$/);
  await page.waitForSelector(`#runs [data-run="${waiting}"]`);
  const shown = await page.$$eval('#runs [data-status]', (els) => els.map((e) => e.getAttribute('data-status')));
  expect(new Set(shown)).toEqual(new Set(['awaiting_approval']));
  await page.selectOption('#status-filter', 'cancelled');
  await page.waitForSelector('#runs li.empty, #runs [data-status="cancelled"]');
  expect(await page.$(`#runs [data-run="${waiting}"]`)).toBeNull();

  await page.selectOption('#status-filter', '');
  await page.waitForURL(/#\/runs$/);
  const id = await stack.submit(markdownSpec('Appears on its own', 30));
  await page.waitForSelector(`#runs [data-run="${id}"]`, { timeout: 10_000 });
  await expectNoHorizontalOverflow(page);
  await shot(page, '11-runs-live');
  await page.click(`#runs [data-run="${id}"]`);
  await page.waitForSelector('#cancel:visible');
  await page.click('#cancel');
  expect(await page.textContent('#cancel')).toBe('Tap again to cancel');
  await page.click('#cancel');
  await page.waitForSelector('#run-header [data-status="cancelled"]', { timeout: 60_000 });
  expect(problems).toEqual([]);
  await page.context().close();
  await stack.api('POST', `/v1/runs/${waiting}/reject`, { body: { comment: 'test over' } });
});

test('schedules: add one paused, resume it, delete it', async () => {
  const { page, problems } = await openPhone(stack.token, '#/schedules');
  await page.waitForSelector('#schedules li');
  await page.fill('#schedule-id', 'web-nightly');
  await page.fill('#schedule-cron', '0 6 * * *');
  await page.check('#schedule-paused');
  await page.fill('#schedule-spec', markdownSpec('Nightly value', 1));
  await page.click('#add-schedule button[type=submit]');
  const item = page.locator('[data-schedule="web-nightly"]');
  await item.locator('strong:text("paused")').waitFor();
  expect(await item.textContent()).toContain('Nightly value');
  await shot(page, '12-schedules');
  await item.locator('[data-action=unpause]').click();
  await item.locator('text=next ').waitFor();
  expect((await stack.api('GET', '/v1/schedules')).body.schedules).toContainEqual(
    expect.objectContaining({ id: 'web-nightly', paused: false }),
  );
  await item.locator('[data-action=delete]').click();
  await item.locator('[data-action=delete]').click();
  await item.waitFor({ state: 'detached' });
  expect((await stack.api('GET', '/v1/schedules')).body.schedules.map((s: { id: string }) => s.id)).not.toContain(
    'web-nightly',
  );
  await expectNoHorizontalOverflow(page);
  expect(problems).toEqual([]);
  await page.context().close();
});

test('the live log resumes after a dropped connection, with Last-Event-ID: every line once, none lost', async () => {
  // An API of its own on the stack's Temporal and home, so the test can cut its connections.
  const port = await freePort();
  const app = createApi({
    client: stack.client,
    config: stack.config,
    tokens: stack.tokens,
    logger: pino({ level: 'silent' }),
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s));
  });
  try {
    const id = await stack.submit(markdownSpec('Through a flaky connection', 8));
    const { page, problems } = await openPhone(undefined, `#/runs/${id}`, `http://127.0.0.1:${port}`);
    const resumedFrom: (string | undefined)[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith(`/v1/runs/${id}/events`)) resumedFrom.push(r.headers()['last-event-id']);
    });
    await signIn(page, stack.token);
    await page.waitForSelector('#log:text("working on step 2")', { timeout: 60_000 });
    server.closeAllConnections();
    await page.waitForSelector('#stream.problem');
    await shot(page, '13-stream-dropped');
    await page.waitForSelector('#run-header [data-status="awaiting_approval"]', { timeout: 60_000 });
    expect(resumedFrom.length).toBeGreaterThanOrEqual(2);
    expect(resumedFrom[0]).toBeUndefined();
    expect(resumedFrom[1]).toMatch(/\S/);
    const log = (await page.textContent('#log'))!;
    for (let step = 1; step <= 8; step++)
      expect([step, log.split(`working on step ${step}\n`).length - 1]).toEqual([step, 1]);
    expect(log.split('=== agent').length - 1).toBe(1);
    expect(await page.textContent('#stream')).toBe('live');
    // The cut stream is the one thing the browser complains about.
    expect(problems).toEqual(['Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING']);
    await page.context().close();
    await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'test over' } });
  } finally {
    await closeServer(server, 0);
  }
});

test('the fleet page shows the worker with its capacity, load, drivers and agent CLIs, and the runs per state', async () => {
  // A run whose agent works for 90 s holds one of the worker's sandboxes meanwhile (it is cancelled at the end).
  const id = await stack.submit(markdownSpec('Holding a sandbox', 90));
  await stack.waitFor(id, ['agent']);
  const { page, problems } = await openPhone(stack.token, '#/runs');
  await page.click('#nav a[href="#/fleet"]');
  const card = page.locator(`#workers [data-worker="${stack.workerName}"]`);
  await card.locator('meter').waitFor();
  // The worker reports every 5 s and the page asks every 3 s; an earlier test's run may still be tearing down, so the
  // page is compared with a fresh answer of the API rather than with a count this test assumes.
  const workerNow = async () =>
    (await stack.api<FleetSnapshot>('GET', '/v1/fleet')).body.workers.find((w) => w.identity === stack.workerName)!;
  // The meter and its text as one snapshot of the card (a refresh between two reads could tell two loads).
  const shownLoad = () =>
    card.evaluate((el) => ({
      meter: el.querySelector('meter')?.getAttribute('value'),
      max: el.querySelector('meter')?.getAttribute('max'),
      text: el.querySelector('.load-text')?.textContent,
    }));
  let [shownNow, worker] = [await shownLoad(), await workerNow()];
  const holding = () => (worker.load ?? 0) >= 1 && shownNow.meter === String(worker.load);
  for (const deadline = Date.now() + 40_000; !holding() && Date.now() < deadline;) {
    await page.waitForTimeout(500);
    [shownNow, worker] = [await shownLoad(), await workerNow()];
  }
  expect(worker.load).toBeGreaterThanOrEqual(1);
  const capacity = stack.config.maxSandboxes;
  expect(shownNow).toEqual({
    meter: String(worker.load),
    max: String(capacity),
    text: expect.stringMatching(new RegExp(`^${worker.load}/${capacity} sandboxes( \\+\\d+ waiting)?$`)),
  });
  expect(await page.textContent('h1')).toBe(`Fleet · ${stack.config.taskQueue}`);

  const fleet = (await stack.api<FleetSnapshot>('GET', '/v1/fleet')).body;
  expect(await card.locator('.host').textContent()).toBe(worker.host);
  expect(worker.drivers).toContain('bwrap');
  expect(await card.locator('[data-driver]').allTextContents()).toEqual(worker.drivers);
  const agents = await card.locator('[data-agent]').allTextContents();
  expect(agents.map((a) => a.split(' ')[0])).toContain('command');
  expect(agents).toEqual(worker.agents!.map((a) => (a.version ? `${a.kind} ${a.version}` : a.kind)));
  expect(await card.locator('p.meta').last().textContent()).toMatch(/^\d+ MiB · reported [0-9.]+ s ago$/);

  // Each refresh shows what GET /v1/fleet answered then: wait for one that matches a fresh answer.
  const nonZero = (runs: FleetSnapshot['runs']) => Object.fromEntries(Object.entries(runs).filter(([, n]) => n > 0));
  const shownCounts = async () =>
    Object.fromEntries(
      (await page.locator('#run-counts [data-count]').allTextContents()).map((t) => [
        t.replace(/ \d+$/, '').replace(/ /g, '_'),
        Number(t.split(' ').pop()),
      ]),
    );
  let [shown, sent] = [await shownCounts(), nonZero(fleet.runs)];
  for (const deadline = Date.now() + 30_000; JSON.stringify(shown) !== JSON.stringify(sent) && Date.now() < deadline;) {
    await page.waitForTimeout(500);
    [shown, sent] = [await shownCounts(), nonZero((await stack.api<FleetSnapshot>('GET', '/v1/fleet')).body.runs)];
  }
  expect(shown).toEqual(sent);
  expect(shown.agent).toBeGreaterThanOrEqual(1);
  expect(await page.textContent('#queue-depth')).toMatch(
    /^\d+ runs waiting for a sandbox slot; \d+ workflow tasks, \d+ activity tasks waiting for a worker$/,
  );
  await expectNoHorizontalOverflow(page);
  await shot(page, '14-fleet');
  expect(problems).toEqual([]);
  await page.context().close();
  await stack.api('POST', `/v1/runs/${id}/cancel`);
  await stack.waitFor(id, ['cancelled'], 60_000);
});
