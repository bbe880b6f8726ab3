import type { Browser, Page } from 'playwright-core';
import { RemoteRepos } from '../config/remotes';
import { expectNoHorizontalOverflow, launchChromium, openPhone, PHONE_WIDTH, shot, shownText } from './helpers/phone';
import { startTestStack, type TestStack } from './helpers/stack';

// The Repos view (web/views/repos.ts) on a phone, against a real API (no worker: registering a repo dials nothing).
let stack: TestStack;
let browser: Browser;
beforeAll(async () => {
  stack = await startTestStack({ worker: false });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const listed = async () => (await stack.api<{ repos: { name: string }[] }>('GET', '/v1/repos')).body.repos;
const remotes = () => new RemoteRepos(stack.config.home);

async function fillRepoForm(
  page: Page,
  repo: { name: string; url: string; forge: string; credential: string; approvers: string },
): Promise<void> {
  await page.fill('#repo-name', repo.name);
  await page.fill('#repo-url', repo.url);
  await page.selectOption('#repo-forge', repo.forge);
  await page.fill('#repo-credential', repo.credential);
  await page.fill('#repo-approvers', repo.approvers);
  await page.click('#add-repo button[type=submit]');
}

test("an admin registers a remote from a phone, is shown the webhook's URL and secret once, and removes it", async () => {
  const { page, problems } = await openPhone(browser, stack.apiUrl, stack.token);
  await page.click('#nav a[href="#/repos"]');
  await page.waitForSelector('#add-repo');

  // A password in the URL: the API's one line under the form, and nothing stored.
  const withPassword = {
    name: 'web-calc',
    url: 'https://bot:hunter2@git.example/acme/calc.git',
    forge: 'gitea',
    credential: 'GITEA_TOKEN',
    approvers: 'bob, carol',
  };
  await fillRepoForm(page, withPassword);
  const refused = await shownText(page, '#add-repo-error');
  expect(refused).toMatch(/^url holds a password: /);
  expect(refused).not.toContain('\n');
  expect(remotes().get('web-calc')).toBeUndefined();
  expect(remotes().webhookSecret('web-calc')).toBeUndefined();
  expect((await listed()).map((r) => r.name)).not.toContain('web-calc');
  // The same words as the API's answer to the same body.
  const answer = await stack.api('POST', '/v1/repos', { body: { ...withPassword, approvers: ['bob', 'carol'] } });
  expect([answer.status, answer.body.error.message]).toEqual([400, refused]);
  await shot(page, '20-repos-refused');

  // A long URL, with markup in it that must stay text.
  const url = `https://git.example.com/a-rather-long-organisation-name/<b>${'and-a-long-repository-name-'.repeat(3)}</b>calc.git`;
  await fillRepoForm(page, { ...withPassword, url });
  await page.waitForSelector('#webhook:not(.hidden)');
  expect(await page.isVisible('#add-repo-error')).toBe(false);
  const secret = remotes().webhookSecret('web-calc');
  expect(secret).toMatch(/^[0-9a-f]{64}$/);
  expect(await page.textContent('#webhook-secret')).toBe(secret);
  expect(await page.textContent('#webhook-url')).toBe(`${stack.config.publicUrl}/v1/forges/web-calc/webhook`);
  expect(await page.textContent('#webhook .hint')).toContain('docs/forges.md');
  expect(await listed()).toContainEqual({
    name: 'web-calc',
    kind: 'remote',
    url,
    forge: 'gitea',
    credential: 'GITEA_TOKEN',
    approvers: ['bob', 'carol'],
  });
  expect(remotes().get('web-calc')).toMatchObject({
    url,
    forge: 'gitea',
    credential: 'GITEA_TOKEN',
    approvers: ['bob', 'carol'],
  });

  const card = page.locator('[data-repo="web-calc"]');
  await card.waitFor();
  expect(await card.locator('.url').textContent()).toBe(url);
  expect(await card.locator('b').count()).toBe(0);
  expect(await card.locator('.details').textContent()).toBe(
    'forge gitea · credential GITEA_TOKEN · approvers bob, carol',
  );
  // Empty again for the next repo.
  expect(await page.inputValue('#repo-name')).toBe('');

  // One hand at 390 px: every control a 44 px target, nothing wider than the phone.
  const heights = await page.$$eval(
    '#add-repo input, #add-repo select, #add-repo button, #repos [data-action=remove], #webhook-done, #nav nav a',
    (els) => els.map((el) => [el.id || el.textContent, Math.round(el.getBoundingClientRect().height)] as const),
  );
  expect(heights.filter(([, height]) => height < 44)).toEqual([]);
  expect(heights.length).toBeGreaterThanOrEqual(13);
  expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE_WIDTH);
  await expectNoHorizontalOverflow(page);
  await shot(page, '21-repos-webhook');

  // Done: the secret leaves the page.
  await page.click('#webhook-done');
  expect(await page.isVisible('#webhook')).toBe(false);
  expect(await page.textContent('body')).not.toContain(secret);

  await card.locator('[data-action=remove]').click();
  expect(await card.locator('[data-action=remove]').textContent()).toBe('Tap again to remove');
  expect(remotes().get('web-calc')).toBeDefined();
  await card.locator('[data-action=remove]').click();
  await card.waitFor({ state: 'detached' });
  expect(remotes().get('web-calc')).toBeUndefined();
  expect(remotes().webhookSecret('web-calc')).toBeUndefined();
  expect((await listed()).map((r) => r.name)).not.toContain('web-calc');
  expect(problems).toEqual([]);
  await page.context().close();
});

test("removing a repo someone else already removed shows the API's one line", async () => {
  expect(
    await stack.api('POST', '/v1/repos', { body: { name: 'web-gone', url: 'https://git.example/acme/gone.git' } }),
  ).toMatchObject({ status: 201 });
  const { page, problems } = await openPhone(browser, stack.apiUrl, stack.token, '#/repos');
  const remove = page.locator('[data-repo="web-gone"] [data-action=remove]');
  await remove.click();
  expect(await stack.api('DELETE', '/v1/repos/web-gone')).toMatchObject({ status: 204 });
  await remove.click();
  expect(await shownText(page, '#repos-error')).toBe('no registered repo named "web-gone"');
  await page.locator('[data-repo="web-gone"]').waitFor({ state: 'detached' });
  // The 404 is the answer shown, not a problem of the page.
  expect(problems.filter((p) => !/status of 404/.test(p))).toEqual([]);
  await page.context().close();
});

test('a viewer sees the registered repos, and no form or remove button', async () => {
  const url = 'https://git.example/acme/viewed.git';
  expect(
    await stack.api('POST', '/v1/repos', {
      body: { name: 'web-viewed', url, forge: 'github', credential: 'GH_TOKEN' },
    }),
  ).toMatchObject({ status: 201 });
  const viewer = stack.tokens.create('repos-viewer', 'viewer');
  const { page, problems } = await openPhone(browser, stack.apiUrl, viewer, '#/repos');
  const card = page.locator('[data-repo="web-viewed"]');
  await card.waitFor();
  expect(await card.locator('.url').textContent()).toBe(url);
  expect(await card.locator('.details').textContent()).toBe('forge github · credential GH_TOKEN');
  expect(await page.$('#add-repo')).toBeNull();
  expect(await page.$('#webhook')).toBeNull();
  expect(await page.locator('[data-action=remove]').count()).toBe(0);
  await expectNoHorizontalOverflow(page);
  await shot(page, '22-repos-viewer');
  expect(problems).toEqual([]);
  await page.context().close();
  expect(await stack.api('DELETE', '/v1/repos/web-viewed')).toMatchObject({ status: 204 });
});
