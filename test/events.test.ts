import { RUN_STATUSES, type RunState, type StageName } from '../contracts/run';
import { openSse as connect, readUntil, type SseEvent, type SseStream } from './helpers/sse';
import { spec, VALUE_REPO } from './helpers/specs';
import { useTestStack } from './helpers/stack';

const suite = useTestStack(VALUE_REPO);

// Every stream a test opens is closed after it, also when it fails midway.
const opened: SseStream[] = [];
afterEach(() => opened.splice(0).forEach((s) => s.close()));
async function openSse(...args: Parameters<typeof connect>): Promise<SseStream> {
  const stream = await connect(...args);
  opened.push(stream);
  return stream;
}

const PIPELINE: StageName[] = [
  'provision',
  'agent',
  'scope',
  'checks',
  'review',
  'approval',
  'rebase',
  'proof',
  'deliver',
];

/** An agent that logs numbered lines over a few seconds (a multi-byte dash in each, so bytes ≠ characters). */
const SLOW_AGENT = 'for i in $(seq 1 15); do echo "line $i — working"; sleep 0.3; done; echo 2 > src/value.txt';

const events = (id: string) => `${suite.stack.apiUrl}/v1/runs/${id}/events`;
const logOf = (es: SseEvent[]) =>
  es
    .filter((e) => e.event === 'log')
    .map((e) => JSON.parse(e.data).text as string)
    .join('');
const statesOf = (es: SseEvent[]) => es.filter((e) => e.event === 'state').map((e) => JSON.parse(e.data) as RunState);
const isEnd = (e: SseEvent) => e.event === 'end';

/** Positions in `order` never go back. */
function inOrder<T>(seen: (T | undefined)[], order: readonly T[]): boolean {
  const at = seen.filter((s): s is T => s !== undefined).map((s) => order.indexOf(s));
  return at.every((i, n) => i >= 0 && (n === 0 || i >= at[n - 1]));
}

test('a client that disconnects mid-run and resumes with Last-Event-ID gets every log byte once, the states in order, then end', async () => {
  const id = await suite.stack.submit(spec(suite.repo, SLOW_AGENT));

  const first = await openSse(events(id), { token: suite.stack.token });
  expect(first.status).toBe(200);
  expect(first.headers.get('content-type')).toBe('text/event-stream');
  expect(first.headers.get('x-accel-buffering')).toBe('no');
  let seen = '';
  const before = await readUntil(first, (e) => (seen += logOf([e])).includes('line 3 '), 60_000);
  first.close();
  expect(before[0].event).toBe('state');
  // Cut mid-agent: the rest of the agent's lines come while this client is away.
  expect(logOf(before)).not.toContain('line 15 ');
  const lastId = before[before.length - 1].id;
  await new Promise((r) => setTimeout(r, 1000));

  const second = await openSse(events(id), { token: suite.stack.token, lastEventId: lastId });
  expect(second.status).toBe(200);
  const waiting = await readUntil(
    second,
    (e) => e.event === 'state' && JSON.parse(e.data).status === 'awaiting_approval',
    60_000,
  );
  // An idle stream gets a comment now and then, so proxies keep it open.
  expect(await second.nextComment(17_000)).toBe('keepalive');
  const approve = await suite.stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'streamed' } });
  expect(approve.status).toBe(202);
  const after = await readUntil(second, isEnd, 60_000);
  expect(await second.next(5_000)).toBeUndefined();

  const all = [...before, ...waiting, ...after];
  const log = await suite.stack.api('GET', `/v1/runs/${id}/logs`);
  expect(log.text).toContain('line 15 — working');
  expect(logOf(all)).toBe(log.text);
  expect(new Set(all.map((e) => e.id)).size).toBe(all.length);

  const states = statesOf(all);
  const statuses = states.map((s) => s.status);
  expect(inOrder(statuses, RUN_STATUSES)).toBe(true);
  expect(statuses).toEqual(expect.arrayContaining(['agent', 'awaiting_approval', 'succeeded']));
  expect(
    inOrder(
      states.map((s) => s.stage),
      PIPELINE,
    ),
  ).toBe(true);
  // The final state (with every stage) and the whole log come before end, which is the last event.
  expect(all[all.length - 1]).toMatchObject({ event: 'end' });
  expect(JSON.parse(all[all.length - 1].data)).toEqual({ status: 'succeeded' });
  const final = states[states.length - 1];
  expect(final.status).toBe('succeeded');
  expect(final.stages.map((s) => s.stage)).toEqual(PIPELINE);
  expect(final).toEqual(await suite.stack.state(id));
});

describe('a run that has ended', () => {
  let id: string;
  beforeAll(async () => {
    // 120 KB of three-byte characters: more than one log event, split where a character would be cut.
    id = await suite.stack.submit(
      spec(suite.repo, `echo "one — two"; yes '—' | head -n 40000 | tr -d '\\n'; echo; echo 2 > src/value.txt`, {
        approval: { required: false },
      }),
    );
    await suite.stack.waitFor(id, ['succeeded']);
  });

  test('is replayed whole: its state, its full log, then end', async () => {
    const stream = await openSse(events(id), { token: suite.stack.token });
    const replay = await readUntil(stream, isEnd, 30_000);
    expect(await stream.next(5_000)).toBeUndefined();
    expect(replay.map((e) => e.event)).toEqual(['state', ...replay.slice(1, -1).map(() => 'log'), 'end']);
    expect(JSON.parse(replay[0].data)).toEqual(await suite.stack.state(id));
    const log = (await suite.stack.api('GET', `/v1/runs/${id}/logs`)).text;
    expect(log).toContain('one — two');
    expect(log).toContain('—'.repeat(40000));
    expect(replay.filter((e) => e.event === 'log').length).toBeGreaterThan(1);
    expect(logOf(replay)).toBe(log);
    expect(JSON.parse(replay[replay.length - 1].data)).toEqual({ status: 'succeeded' });
  });

  test('resumes exactly after any event, by header or query parameter; after end there is nothing (204)', async () => {
    const replay = await readUntil(await openSse(events(id), { token: suite.stack.token }), isEnd, 30_000);
    const log = logOf(replay);

    // After the state event: the whole log and end, the state not again.
    const afterState = await readUntil(
      await openSse(events(id), { token: suite.stack.token, lastEventId: replay[0].id }),
      isEnd,
      30_000,
    );
    expect(afterState.map((e) => e.event)).not.toContain('state');
    expect(logOf(afterState)).toBe(log);
    expect(afterState[afterState.length - 1].event).toBe('end');

    // After the last log event, for a client that cannot set headers: only end.
    const lastLog = replay[replay.length - 2];
    const viaQuery = await openSse(`${events(id)}?lastEventId=${encodeURIComponent(lastLog.id)}`, {
      token: suite.stack.token,
    });
    expect((await readUntil(viaQuery, isEnd, 30_000)).map((e) => e.event)).toEqual(['end']);

    const afterEnd = await openSse(events(id), { token: suite.stack.token, lastEventId: replay[replay.length - 1].id });
    expect(afterEnd.status).toBe(204);
  });

  test('a malformed or foreign Last-Event-ID → 400; no token → 401; an unknown run → 404', async () => {
    for (const bad of ['garbage', '1-nothex-0', '1-0123456789ab-12-start']) {
      const res = await openSse(events(id), { token: suite.stack.token, lastEventId: bad });
      expect([bad, res.status]).toEqual([bad, 400]);
      expect(JSON.parse(res.errorText!).error.message).toMatch(
        /^Last-Event-ID must be the id of an event this stream sent/,
      );
    }
    const query = await openSse(`${events(id)}?lastEventId=oops`, { token: suite.stack.token });
    expect(query.status).toBe(400);
    const size = Buffer.byteLength((await suite.stack.api('GET', `/v1/runs/${id}/logs`)).text);
    const pastEnd = await openSse(events(id), { token: suite.stack.token, lastEventId: `1-0123456789ab-${size + 1}` });
    expect(pastEnd.status).toBe(400);
    expect(JSON.parse(pastEnd.errorText!).error.message).toMatch(/past the end of run .*'s log/);

    const anonymous = await openSse(events(id));
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.errorText!).error.message).toMatch(/missing bearer token/);
    const unknown = await openSse(events('ns-doesnotexist'), { token: suite.stack.token });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.errorText!)).toEqual({
      error: { code: 'not_found', message: 'no run with id ns-doesnotexist' },
    });
  });
});

test('streams stop their timers when the client disconnects', async () => {
  const id = await suite.stack.submit(spec(suite.repo, 'echo 2 > src/value.txt'));
  await suite.stack.waitFor(id, ['awaiting_approval']);
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const baseline = timers();

  const streams = await Promise.all(Array.from({ length: 5 }, () => openSse(events(id), { token: suite.stack.token })));
  for (const s of streams) expect((await s.next(30_000))?.event).toBe('state');
  // Each open stream holds its keepalive timer (and a poll timer between polls).
  expect(timers()).toBeGreaterThanOrEqual(baseline + 5);
  for (const s of streams) s.close();

  let left = timers();
  for (let i = 0; i < 30 && left > baseline; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = timers();
  }
  expect(left).toBeLessThanOrEqual(baseline);
  await suite.stack.api('POST', `/v1/runs/${id}/reject`, { body: {} });
});
