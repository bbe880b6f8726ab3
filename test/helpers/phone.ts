import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** The page's web tests (test/web*.test.ts): Debian's Chromium at a phone's size, screenshots in one folder. */
export const PHONE_WIDTH = 390;
export const SHOTS = path.join(__dirname, '..', '..', '..', 'test-results', 'web');

export async function launchChromium(): Promise<Browser> {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * A phone-sized page of the API's web UI at `apiUrl`, served with the strict Content-Security-Policy the API is to
 * send (`default-src 'self'`), recording every violation and script error, signed in with `token` when given.
 */
export async function openPhone(
  browser: Browser,
  apiUrl: string,
  token?: string,
  hash = '',
): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({
    viewport: { width: PHONE_WIDTH, height: 844 },
    isMobile: true,
    hasTouch: true,
    acceptDownloads: true,
  });
  await context.route(
    (url) => url.pathname === '/',
    async (route) => {
      const response = await route.fetch();
      await route.fulfill({
        response,
        headers: { ...response.headers(), 'content-security-policy': "default-src 'self'" },
      });
    },
  );
  // Page-side code is passed as strings: this program is typed for Node, not the DOM.
  await context.addInitScript(
    `document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))`,
  );
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // A server without GET /v1/repos (api/repoRoutes.ts) answers 404 there, and the New form falls back to a text
    // field.
    const noRepoList = /status of 404/.test(msg.text()) && msg.location().url.endsWith('/v1/repos');
    if (msg.type() === 'error' && !/status of (400|401|403)/.test(msg.text()) && !noRepoList) problems.push(msg.text());
  });
  await page.goto(`${apiUrl}/${hash}`);
  if (token) await signIn(page, token);
  return { page, problems };
}

export async function signIn(page: Page, token: string): Promise<void> {
  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#nav:not(.hidden)');
}

/** The text of an element once it is shown (error lines are hidden while empty). */
export async function shownText(page: Page, selector: string): Promise<string> {
  await page.waitForSelector(`${selector}:not(.hidden)`);
  return (await page.textContent(selector)) ?? '';
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

export async function expectNoHorizontalOverflow(page: Page): Promise<void> {
  expect(await page.evaluate('document.scrollingElement.scrollWidth')).toBeLessThanOrEqual(PHONE_WIDTH);
}
