import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// Webhooks configured on the server (NIGHTSHIFT_WEBHOOKS), posted to by the worker's notify activity, received by
// real HTTP servers on loopback ports.

/** The secret part of the receivers' URLs, as in Slack's incoming-webhook URLs. */
const TOKEN = `hook-secret-${randomBytes(12).toString('hex')}`;
const PUBLIC_URL = 'https://nightshift.example.test';

interface Delivery {
  receiver: string;
  body: any;
  status: number;
  at: number;
}

/** How a receiver answers the nth request (from 1) for one run and event. */
type Answer = (attempt: number) => Promise<number> | number;

interface Receivers {
  url(receiver: string): string;
  port: number;
  /** What `receiver` was sent about `runId`, in arrival order. */
  deliveries(receiver: string, runId: string): Delivery[];
  close(): Promise<void>;
}

/** One loopback HTTP server; receiver NAME listens at /NAME/TOKEN and answers as `answers[NAME]` says. */
async function startReceivers(answers: Record<string, Answer>): Promise<Receivers> {
  const received: Delivery[] = [];
  const attempts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', async () => {
      const [, receiver, token] = (req.url ?? '').split('/');
      const answer = answers[receiver];
      if (req.method !== 'POST' || token !== TOKEN || !answer) {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(text);
      const key = `${receiver} ${body.runId ?? ''} ${body.event ?? body.text}`;
      attempts.set(key, (attempts.get(key) ?? 0) + 1);
      const status = await answer(attempts.get(key)!);
      received.push({ receiver, body, status, at: Date.now() });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (receiver) => `http://127.0.0.1:${port}/${receiver}/${TOKEN}`,
    deliveries: (receiver, runId) =>
      received.filter(
        (d) => d.receiver === receiver && (d.body.runId === runId || String(d.body.text).includes(`/#/runs/${runId}`)),
      ),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const accepted = (ds: Delivery[]) => ds.filter((d) => d.status >= 200 && d.status < 300);
const events = (ds: Delivery[]) => ds.map((d) => d.body.event);

/** The run's history as JSON, with the payloads (base64 in the history's JSON form) decoded. */
async function historyText(stack: TestStack, id: string): Promise<string> {
  const history = await stack.client.workflow.getHandle(id).fetchHistory();
  const payloads: string[] = [];
  const json = JSON.stringify(history, (key, value) => {
    if (key === 'data' && typeof value === 'string') payloads.push(Buffer.from(value, 'base64').toString('utf8'));
    return value;
  });
  return [json, ...payloads].join('\n');
}

async function runLog(stack: TestStack, id: string): Promise<string> {
  return (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
}

describe('healthy receivers, and one that fails twice', () => {
  let receivers: Receivers;
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    receivers = await startReceivers({ generic: () => 200, slack: () => 204, flaky: (n) => (n <= 2 ? 500 : 200) });
    const webhooks = [receivers.url('generic'), `slack+${receivers.url('slack')}`, receivers.url('flaky')].join(', ');
    stack = await startTestStack({ env: { NIGHTSHIFT_WEBHOOKS: webhooks, NIGHTSHIFT_PUBLIC_URL: PUBLIC_URL } });
    repo = makeRepo(VALUE_REPO);
  });
  afterAll(async () => {
    await stack?.stop();
    await receivers?.close();
  });

  test('a generic and a Slack-format receiver hear awaiting_approval, then succeeded, with the run id, status and link', async () => {
    const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt'));
    const link = `${PUBLIC_URL}/#/runs/${id}`;
    const waiting = await stack.waitFor(id, ['awaiting_approval']);
    const first = await until(
      'awaiting_approval at the generic receiver',
      () => receivers.deliveries('generic', id)[0],
    );
    expect(first.body).toEqual({
      event: 'awaiting_approval',
      runId: id,
      title: 'Set the value to two',
      status: 'awaiting_approval',
      stage: 'approval',
      url: link,
      at: expect.any(String),
    });
    // `at` is when the run entered the approval wait: after the review stage ended, before anyone decided.
    const review = waiting.stages.find((s) => s.stage === 'review')!;
    expect(Date.parse(first.body.at)).toBeGreaterThanOrEqual(Date.parse(review.endedAt!));

    await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'ok' } });
    await stack.waitFor(id, ['succeeded']);
    const generic = await until(
      'succeeded at the generic receiver',
      () => receivers.deliveries('generic', id).length >= 2 && receivers.deliveries('generic', id),
    );
    expect(events(generic)).toEqual(['awaiting_approval', 'succeeded']);
    expect(generic[1].body).toEqual({
      event: 'succeeded',
      runId: id,
      title: 'Set the value to two',
      status: 'succeeded',
      stage: 'deliver',
      url: link,
      at: expect.any(String),
    });
    expect(Date.parse(generic[1].body.at)).toBeGreaterThan(Date.parse(first.body.at));

    const slack = await until(
      'two messages at the Slack receiver',
      () => receivers.deliveries('slack', id).length >= 2 && receivers.deliveries('slack', id),
    );
    expect(slack.map((d) => d.body)).toEqual([
      { text: `Nightshift: "Set the value to two" awaiting approval — ${link}` },
      { text: `Nightshift: "Set the value to two" succeeded — ${link}` },
    ]);
  });

  test('a failing run notifies failed with its stage and reason', async () => {
    const id = await stack.submit(
      spec(repo, 'echo 3 > src/value.txt', { title: 'Totals & <rounding>', limits: { iterations: 1 } }),
    );
    const state = await stack.waitFor(id, ['failed']);
    expect(state.failure).toMatchObject({ stage: 'checks', reason: expect.stringContaining('expected 2, got 3') });
    const [generic] = await until(
      'failed at the generic receiver',
      () => receivers.deliveries('generic', id).length > 0 && receivers.deliveries('generic', id),
    );
    expect(generic.body).toEqual({
      event: 'failed',
      runId: id,
      title: 'Totals & <rounding>',
      status: 'failed',
      stage: 'checks',
      reason: state.failure!.reason,
      url: `${PUBLIC_URL}/#/runs/${id}`,
      at: expect.any(String),
    });
    const [slack] = await until(
      'failed at the Slack receiver',
      () => receivers.deliveries('slack', id).length > 0 && receivers.deliveries('slack', id),
    );
    // One line: the reason's first line (the check and how it failed), not the log tail after it.
    const firstLine = state.failure!.reason.split('\n')[0];
    expect(firstLine).toMatch(/^Check "value" \(`test .*`\) failed with exit code 1\. Its log ends with:$/);
    // Slack reads &, < and > as markup: escaped.
    expect(slack.body.text).toBe(
      `Nightshift: "Totals &amp; &lt;rounding&gt;" failed at checks: ${firstLine} … — ${PUBLIC_URL}/#/runs/${id}`,
    );
    expect(receivers.deliveries('generic', id)).toHaveLength(1);
  });

  test('a receiver that answers 500 twice gets each event on the third attempt; the others get it exactly once', async () => {
    const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt'));
    await stack.waitFor(id, ['awaiting_approval']);
    const flaky = await until(
      'the flaky receiver to accept awaiting_approval',
      () => accepted(receivers.deliveries('flaky', id)).length === 1 && receivers.deliveries('flaky', id),
    );
    expect(flaky.map((d) => d.status)).toEqual([500, 500, 200]);
    expect(events(flaky)).toEqual(['awaiting_approval', 'awaiting_approval', 'awaiting_approval']);
    // Temporal's retry policy spaces the attempts: 1 s, then 2 s.
    expect(flaky[1].at - flaky[0].at).toBeGreaterThanOrEqual(900);
    expect(flaky[2].at - flaky[1].at).toBeGreaterThanOrEqual(1900);
    // The retries did not re-send to the receivers that had accepted the first attempt.
    expect(events(receivers.deliveries('generic', id))).toEqual(['awaiting_approval']);
    expect(receivers.deliveries('slack', id)).toHaveLength(1);
    expect(await runLog(stack, id)).not.toContain('=== notify:');
  });
});

describe('a receiver that never accepts', () => {
  let receivers: Receivers;
  let stack: TestStack;

  beforeAll(async () => {
    // A slow 503: each attempt takes a second and a half, so giving up on one event takes about 20 s.
    const down = async () => {
      await new Promise((r) => setTimeout(r, 1500));
      return 503;
    };
    receivers = await startReceivers({ generic: () => 200, down });
    stack = await startTestStack({
      env: {
        NIGHTSHIFT_WEBHOOKS: `${receivers.url('generic')},${receivers.url('down')}`,
        NIGHTSHIFT_PUBLIC_URL: PUBLIC_URL,
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await receivers?.close();
  });

  test('does not hold the run up; the run log says the notification failed; its URL is not in the history', async () => {
    const id = await stack.submit(spec(makeRepo(VALUE_REPO), 'echo 2 > src/value.txt'));
    await stack.waitFor(id, ['awaiting_approval']);
    await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'ok' } });
    await stack.waitFor(id, ['succeeded']);
    // The run got through approval and delivery while awaiting_approval was still being retried.
    expect(receivers.deliveries('down', id).filter((d) => d.body.event === 'awaiting_approval').length).toBeLessThan(5);

    const failedLine = (event: string) =>
      `=== notify: the ${event} notification failed after its retries: webhook 2 (127.0.0.1:${receivers.port}): answered 503 ===`;
    const log = await until(
      'both failures in the run log',
      async () => {
        const text = await runLog(stack, id);
        return text.includes(failedLine('awaiting_approval')) && text.includes(failedLine('succeeded')) && text;
      },
      90_000,
    );
    // Five attempts per event (the retry policy), the two events' retries interleaved.
    expect(events(receivers.deliveries('down', id)).sort()).toEqual([
      ...Array(5).fill('awaiting_approval'),
      ...Array(5).fill('succeeded'),
    ]);
    expect(events(receivers.deliveries('generic', id))).toEqual(['awaiting_approval', 'succeeded']);
    expect((await stack.state(id)).status).toBe('succeeded');
    // The workflow ends once the webhooks are done with: completed, not failed.
    await until(
      'the workflow to close',
      async () => (await stack.client.workflow.getHandle(id).describe()).status.name === 'COMPLETED',
    );

    const history = await historyText(stack, id);
    // The decoding works (the notice and the failure are in there), and the receivers' URLs are not.
    expect(history).toContain('"event":"awaiting_approval"');
    expect(history).toContain(`webhook 2 (127.0.0.1:${receivers.port}): answered 503`);
    expect(history).not.toContain(TOKEN);
    expect(log).not.toContain(TOKEN);
  }, 150_000);
});

test('a bad NIGHTSHIFT_WEBHOOKS stops the worker at start with one line that does not echo the URL', async () => {
  const cli = path.resolve(__dirname, '..', 'cli', 'main.js');
  const env = {
    ...process.env,
    NIGHTSHIFT_HOME: tempDir('home'),
    NIGHTSHIFT_WEBHOOKS: `https://hooks.example.test/ok,ftp://files.example.test/${TOKEN}`,
  };
  const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [cli, 'worker'], { env, timeout: 20_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? Number(err.code) : 0, stderr }),
    );
  });
  expect(result.stderr).toBe(
    'nightshift: NIGHTSHIFT_WEBHOOKS entry 2 is not an http(s) URL without user:password@ (slack+https://… selects the Slack format)\n',
  );
  expect(result.code).toBe(1);
});
