import type { Browser } from 'playwright-core';
import { settle } from '../budget/ledger';
import { expectNoHorizontalOverflow, launchChromium, openPhone, shot } from './helpers/phone';
import { startTestStack, type TestStack } from './helpers/stack';

// The Spend view (web/views/spend.ts) on a phone, against a real API over a ledger booked by settle() (no worker).
let stack: TestStack;
let browser: Browser;
beforeAll(async () => {
  stack = await startTestStack({ worker: false });
  browser = await launchChromium();
  const book = (token: string, model: string, costUsd: number, at: number) =>
    settle(
      stack.config.home,
      `${token}-${at}`,
      { token, repo: 'billing' },
      [],
      {
        model,
        inputTokens: 100,
        outputTokens: 10,
        costUsd,
      },
      at,
    );
  book('alice', 'model-a', 0.25, Date.UTC(2026, 1, 1, 9));
  book('alice', 'model-b', 0.5, Date.UTC(2026, 1, 2, 9));
  book('alice', 'model-a', 0.25, Date.UTC(2026, 1, 2, 10));
  book('bob', 'model-c', 7, Date.UTC(2026, 1, 2, 11));
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

test('a viewer sees its own spend by day (newest first, with its models) and by model; six nav links on one row', async () => {
  const alice = stack.tokens.create('alice', 'viewer');
  const { page, problems } = await openPhone(browser, stack.apiUrl, alice);
  await page.click('#nav a[href="#/spend"]');
  await page.waitForSelector('#spend-days [data-key]');
  expect(await page.$$eval('#spend-days > li', (els) => els.map((e) => e.getAttribute('data-key')))).toEqual([
    '2026-02-02',
    '2026-02-01',
  ]);
  expect(await page.textContent('#spend-total')).toBe('$1.00 in all · 3 requests · 300 tokens in, 30 out');
  const day = await page.textContent('#spend-days [data-key="2026-02-02"]');
  expect(day).toContain('$0.75');
  expect(await page.textContent('#spend-days [data-key="2026-02-02"] [data-model="model-b"]')).toBe(
    'model-b $0.50 · 1 request · 100 tokens in, 10 out',
  );
  // Bob's spend is not alice's to see.
  expect(await page.$$eval('#spend-models > li', (els) => els.map((e) => e.getAttribute('data-key')))).toEqual([
    'model-a',
    'model-b',
  ]);
  const linkTops = await page.$$eval('#nav nav a', (els) => els.map((e) => Math.round(e.getBoundingClientRect().top)));
  expect(linkTops).toHaveLength(6);
  expect(new Set(linkTops).size).toBe(1);
  await expectNoHorizontalOverflow(page);
  await shot(page, '30-spend');
  expect(problems).toEqual([]);
});

test("an admin's Spend page has everyone's models", async () => {
  const { page, problems } = await openPhone(browser, stack.apiUrl, stack.token, '#/spend');
  await page.waitForSelector('#spend-models [data-key="model-c"]');
  expect(await page.textContent('#spend-total')).toBe('$8.00 in all · 4 requests · 400 tokens in, 40 out');
  expect(problems).toEqual([]);
});
