import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { AuthFailureLimiter } from '../api/authLimiter';
import { unpackTarGz } from '../proof/tar';
import { openArtifactStore } from '../store/openArtifacts';
import { startTestStack, useTestStack, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

const suite = useTestStack(VALUE_REPO);

async function runCount(s: TestStack): Promise<number> {
  return (await s.client.workflow.count(`WorkflowType = 'specRun' AND TaskQueue = '${s.config.taskQueue}'`)).count;
}

/** A request from a chosen loopback address (the rate limit is per client address). */
function requestFrom(
  localAddress: string,
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { localAddress, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject).end();
  });
}

/** The value of one sample line of a Prometheus exposition, e.g. `nightshift_runs{status="succeeded"}`. */
function sample(metrics: string, name: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('security headers', () => {
  test('on the page path, an API route, healthz and error responses', async () => {
    const responses = [
      ['GET / (the web page)', await suite.stack.api('GET', '/', { token: null }), 200],
      ['GET /v1/runs', await suite.stack.api('GET', '/v1/runs'), 200],
      ['GET /v1/runs without a token', await suite.stack.api('GET', '/v1/runs', { token: null }), 401],
      ['GET /healthz', await suite.stack.api('GET', '/healthz', { token: null }), 200],
      ['GET /v1/nothing', await suite.stack.api('GET', '/v1/nothing'), 404],
    ] as const;
    for (const [name, res, status] of responses) {
      const h = (k: string) => res.headers.get(k);
      expect([name, res.status]).toEqual([name, status]);
      const csp = h('content-security-policy') ?? '';
      expect([name, csp.split(';').sort()]).toEqual([
        name,
        [
          "base-uri 'none'",
          "default-src 'self'",
          "form-action 'self'",
          "frame-ancestors 'none'",
          "img-src 'self' data:",
          "object-src 'none'",
        ],
      ]);
      expect([name, h('x-frame-options'), h('referrer-policy'), h('x-content-type-options')]).toEqual([
        name,
        'DENY',
        'no-referrer',
        'nosniff',
      ]);
      expect([name, h('strict-transport-security')]).toEqual([name, expect.stringMatching(/^max-age=\d+/)]);
      expect([name, h('x-powered-by'), h('access-control-allow-origin')]).toEqual([name, null, null]);
    }
  });
});

describe('CORS', () => {
  const foreign = 'https://evil.example';

  test('closed by default: no Access-Control-Allow-* on a request or on a preflight from another origin', async () => {
    const get = await suite.stack.api('GET', '/v1/runs', { headers: { origin: foreign } });
    expect(get.status).toBe(200);
    const preflight = await suite.stack.api('OPTIONS', '/v1/runs', {
      token: null,
      headers: {
        origin: foreign,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    for (const res of [get, preflight]) {
      expect([...res.headers.keys()].filter((k) => k.startsWith('access-control-'))).toEqual([]);
    }
  });

  test('NIGHTSHIFT_CORS_ORIGINS opens it for the listed origins only, preflight included', async () => {
    const phone = 'http://192.168.1.20:8080';
    const open = await startTestStack({
      worker: false,
      env: { NIGHTSHIFT_CORS_ORIGINS: `https://nightshift.example, ${phone}` },
    });
    try {
      const preflight = await open.api('OPTIONS', '/v1/runs', {
        token: null,
        headers: {
          origin: phone,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(phone);
      expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
      expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization.*Content-Type/);
      const get = await open.api('GET', '/v1/runs', { headers: { origin: phone } });
      expect([get.status, get.headers.get('access-control-allow-origin'), get.headers.get('vary')]).toEqual([
        200,
        phone,
        'Origin',
      ]);

      const other = await open.api('OPTIONS', '/v1/runs', {
        token: null,
        headers: { origin: foreign, 'access-control-request-method': 'POST' },
      });
      expect(other.status).toBe(401);
      const otherGet = await open.api('GET', '/v1/runs', { headers: { origin: foreign } });
      for (const res of [other, otherGet])
        expect([...res.headers.keys()].filter((k) => k.startsWith('access-control-'))).toEqual([]);
    } finally {
      await open.stop();
    }
  });
});

test('an oversized body → 413 with a one-line reason, and nothing starts', async () => {
  const before = await runCount(suite.stack);
  const res = await suite.stack.api('POST', '/v1/runs', {
    body: `---\ntitle: big\nrepo: ${suite.repo}\n---\n${'x'.repeat(600 * 1024)}`,
    contentType: 'text/markdown',
  });
  expect(res.status).toBe(413);
  expect(res.body.error).toEqual({ code: 'too_large', message: 'the body is larger than 512 KB' });
  expect(await runCount(suite.stack)).toBe(before);
});

test('tokens are on disk as sha256 digests, never as themselves', () => {
  const token = suite.stack.tokens.create('disk-check', 'viewer');
  const onDisk = readFileSync(path.join(suite.stack.config.home, 'tokens.json'), 'utf8');
  expect(onDisk).not.toContain(token);
  expect(onDisk).not.toContain(token.slice(3));
  expect(JSON.parse(onDisk)).toContainEqual({
    name: 'disk-check',
    role: 'viewer',
    sha256: createHash('sha256').update(token).digest('hex'),
  });
  expect(suite.stack.tokens.verify(token)).toEqual({ name: 'disk-check', role: 'viewer' });
});

describe('failed authentication is rate-limited per address', () => {
  test('the 11th try after 10 invalid tokens → 429 with Retry-After, a good token too; another address is served; no run starts', async () => {
    // A stack of its own: this one locks 127.0.0.1 out for five minutes.
    const locked = await startTestStack({ worker: false });
    try {
      const before = await runCount(locked);
      for (let i = 0; i < 10; i++) {
        const res = await locked.api('POST', '/v1/runs', { token: `ns_guess-${i}`, body: spec(suite.repo, 'true') });
        expect([i, res.status, res.body.error.message]).toEqual([i, 401, 'invalid token']);
      }
      const limited = await locked.api('POST', '/v1/runs', { token: 'ns_guess-10', body: spec(suite.repo, 'true') });
      expect(limited.status).toBe(429);
      expect(limited.body.error.code).toBe('too_many_requests');
      expect(limited.body.error.message).toMatch(/^too many invalid tokens from 127\.0\.0\.1; try again in \d+ s$/);
      const retryAfter = Number(limited.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(250);
      expect(retryAfter).toBeLessThanOrEqual(300);

      const good = await locked.api('GET', '/v1/runs');
      expect([good.status, good.headers.get('retry-after')]).toEqual([429, expect.stringMatching(/^\d+$/)]);
      // Security headers on the refusal too.
      expect(good.headers.get('content-security-policy')).toContain("default-src 'self'");

      const elsewhere = await requestFrom('127.0.0.2', `${locked.apiUrl}/v1/fleet`, {
        authorization: `Bearer ${locked.token}`,
      });
      expect(elsewhere.status).toBe(200);
      expect(JSON.parse(elsewhere.body)).toMatchObject({ taskQueue: locked.config.taskQueue, runs: { queued: 0 } });
      expect(await runCount(locked)).toBe(before);
    } finally {
      await locked.stop();
    }
  });

  test('a window ends, and the limiter remembers a bounded number of addresses', () => {
    let now = 0;
    const limiter = new AuthFailureLimiter({ maxFailures: 3, windowMs: 1000, maxAddresses: 50 }, () => now);
    for (let i = 0; i < 3; i++) limiter.recordFailure('10.0.0.1');
    expect(limiter.retryAfterSeconds('10.0.0.1')).toBe(1);
    expect(limiter.retryAfterSeconds('10.0.0.2')).toBe(0);
    now = 1000;
    expect(limiter.retryAfterSeconds('10.0.0.1')).toBe(0);
    for (let i = 0; i < 500; i++) limiter.recordFailure(`10.1.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(50);
    // The newest addresses are the ones kept.
    for (let i = 0; i < 2; i++) limiter.recordFailure('10.1.1.243');
    expect(limiter.retryAfterSeconds('10.1.1.243')).toBe(1);
  });
});

describe('decisions name the token that made them', () => {
  let succeeded: Awaited<ReturnType<TestStack['state']>>;

  test('request-changes and approve: in the run and in the proof manifest', async () => {
    const phone = suite.stack.tokens.create('phone', 'approver');
    const laptop = suite.stack.tokens.create('laptop', 'approver');
    const id = await suite.stack.submit(spec(suite.repo, 'echo 2 > src/value.txt'));
    await suite.stack.waitFor(id, ['awaiting_approval']);
    expect(
      (
        await suite.stack.api('POST', `/v1/runs/${id}/request-changes`, {
          token: phone,
          body: { comment: 'add a note' },
        })
      ).status,
    ).toBe(202);
    // The second iteration ends awaiting approval again.
    for (let i = 0; i < 300 && (await suite.stack.state(id)).iteration < 2; i++)
      await new Promise((r) => setTimeout(r, 300));
    expect((await suite.stack.waitFor(id, ['awaiting_approval'])).iteration).toBe(2);
    expect(
      (await suite.stack.api('POST', `/v1/runs/${id}/approve`, { token: laptop, body: { comment: 'ok' } })).status,
    ).toBe(202);
    succeeded = await suite.stack.waitFor(id, ['succeeded']);
    const expected = [
      expect.objectContaining({ kind: 'requestChanges', by: 'phone', comment: 'add a note' }),
      expect.objectContaining({ kind: 'approve', by: 'laptop', comment: 'ok' }),
    ];
    expect(succeeded.decisions).toEqual(expected);
    const manifest = JSON.parse(
      (await unpackTarGz(await openArtifactStore(suite.stack.config).get(succeeded.proofId!)))
        .get('manifest.json')!
        .toString(),
    );
    expect(manifest.decisions).toEqual(expected);
    expect(manifest.approval).toMatchObject({ kind: 'approve', by: 'laptop' });
  });

  test('/metrics: 401 without a token; with one, runs by status and the stage durations of the run that finished', async () => {
    expect(succeeded).toBeDefined();
    const anonymous = await suite.stack.api('GET', '/metrics', { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.message).toMatch(/missing bearer token/);

    const viewer = suite.stack.tokens.create('prometheus', 'viewer');
    let metrics = '';
    // Visibility is eventually consistent, and the run's status is final a moment before its workflow closes (and its
    // result, which the histogram reads, exists): wait until both show.
    const seen = () =>
      sample(metrics, 'nightshift_runs{status="succeeded"}') === 1 &&
      sample(metrics, 'nightshift_stage_duration_seconds_count{stage="provision"}') !== undefined;
    for (let i = 0; i < 40 && !seen(); i++) {
      const res = await suite.stack.api('GET', '/metrics', { token: viewer });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      metrics = res.text;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(sample(metrics, 'nightshift_runs{status="succeeded"}')).toBe(1);
    expect(sample(metrics, 'nightshift_runs{status="awaiting_approval"}')).toBe(0);
    expect(sample(metrics, 'nightshift_runs{status="failed"}')).toBe(0);
    expect(sample(metrics, 'nightshift_queue_depth')).toBe(0);
    expect(metrics).toContain('# TYPE nightshift_stage_duration_seconds histogram');

    // Each stage the run went through, as many times as it ran, with the durations the run recorded.
    const stages = new Map<string, number[]>();
    for (const s of succeeded.stages) stages.set(s.stage, [...(stages.get(s.stage) ?? []), s.durationMs! / 1000]);
    expect([...stages.keys()].sort()).toEqual([
      'agent',
      'approval',
      'checks',
      'deliver',
      'proof',
      'provision',
      'rebase',
      'review',
      'scope',
    ]);
    for (const [stage, seconds] of stages) {
      expect([stage, sample(metrics, `nightshift_stage_duration_seconds_count{stage="${stage}"}`)]).toEqual([
        stage,
        seconds.length,
      ]);
      expect([stage, sample(metrics, `nightshift_stage_duration_seconds_bucket{stage="${stage}",le="+Inf"}`)]).toEqual([
        stage,
        seconds.length,
      ]);
      expect(sample(metrics, `nightshift_stage_duration_seconds_sum{stage="${stage}"}`)).toBeCloseTo(
        seconds.reduce((a, b) => a + b, 0),
        6,
      );
      const within1s = seconds.filter((s) => s <= 1).length;
      expect([stage, sample(metrics, `nightshift_stage_duration_seconds_bucket{stage="${stage}",le="1"}`)]).toEqual([
        stage,
        within1s,
      ]);
    }
    expect(metrics).not.toContain('stage="teardown"');
  });

  test('cancel: the run names who cancelled it', async () => {
    const ci = suite.stack.tokens.create('ci-bot', 'submitter');
    const id = await suite.stack.submit(spec(suite.repo, 'echo started; sleep 60'));
    await suite.stack.waitFor(id, ['agent']);
    expect(
      (await suite.stack.api('POST', `/v1/runs/${id}/cancel`, { token: ci, body: { comment: 'wrong repo' } })).status,
    ).toBe(202);
    const cancelled = await suite.stack.waitFor(id, ['cancelled']);
    expect(cancelled.decisions).toEqual([
      expect.objectContaining({ kind: 'cancel', by: 'ci-bot', comment: 'wrong repo' }),
    ]);
  });
});

test('/metrics counts queued runs and the backlog of a queue no worker polls', async () => {
  const idle = await startTestStack({ worker: false });
  try {
    const ids = [await idle.submit(spec(suite.repo, 'true')), await idle.submit(spec(suite.repo, 'true'))];
    let metrics = '';
    // Visibility and the backlog statistics both lag a little.
    for (
      let i = 0;
      i < 120 &&
      (sample(metrics, 'nightshift_runs{status="queued"}') !== 2 || sample(metrics, 'nightshift_queue_depth') !== 2);
      i++
    ) {
      metrics = (await idle.api('GET', '/metrics')).text;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(sample(metrics, 'nightshift_runs{status="queued"}')).toBe(2);
    expect(sample(metrics, 'nightshift_queue_depth')).toBe(2);
    await Promise.all(ids.map((id) => idle.client.workflow.getHandle(id).terminate('test over')));
  } finally {
    await idle.stop();
  }
});
