import { setTimeout as sleep } from 'node:timers/promises';
import { RunPollers } from '../../api/runPollers';
import { StreamSlots } from '../../api/streamSlots';
import { RunLog } from '../../store/runLog';
import type { RunState } from '../../contracts/run';
import { tempDir } from '../helpers/repos';

// The API's event streams under load (issue 20): capped per token and in all, one poller per run however many watch it.

const running = (id: string, n: number) => ({ id, status: 'agent', iteration: n, stages: [] }) as unknown as RunState;

describe('stream slots', () => {
  test("a token's stream past its cap is refused naming that cap; others' are not; a freed slot is taken again", () => {
    const slots = new StreamSlots({ perToken: 2, total: 10 });
    const a = [slots.take('viewer-a'), slots.take('viewer-a')];
    expect(() => slots.take('viewer-a')).toThrow(
      'too many event streams for this token: at most 2 open at once (NIGHTSHIFT_STREAMS_PER_TOKEN); close one first',
    );
    expect(() => slots.take('viewer-b')).not.toThrow();
    a[0]();
    // Freeing twice frees one slot, not two: the third take is refused again.
    a[0]();
    expect(slots.open('viewer-a')).toBe(1);
    slots.take('viewer-a');
    expect(() => slots.take('viewer-a')).toThrow(/NIGHTSHIFT_STREAMS_PER_TOKEN/);
  });

  test('the server-wide cap holds across tokens, with its own reason and a 429', () => {
    const slots = new StreamSlots({ perToken: 5, total: 3 });
    const taken = ['a', 'b', 'c'].map((t) => slots.take(t));
    let refused: unknown;
    try {
      slots.take('d');
    } catch (err) {
      refused = err;
    }
    expect(refused).toMatchObject({
      status: 429,
      code: 'too_many_requests',
      message:
        'too many event streams on this server: at most 3 open at once (NIGHTSHIFT_STREAMS_TOTAL); try again later',
    });
    taken[1]();
    expect(slots.open()).toBe(2);
    expect(() => slots.take('d')).not.toThrow();
  });
});

describe('run pollers', () => {
  const runLog = new RunLog(tempDir('pollers'));
  // Every subscription a test makes ends after it, also when it fails midway (a poller left would keep jest alive).
  const subscribed: AbortController[] = [];
  afterEach(() => subscribed.splice(0).forEach((c) => c.abort()));
  const controller = () => {
    const c = new AbortController();
    subscribed.push(c);
    return c;
  };

  test('150 subscribers of one run share one poller: one load per poll, none once the last has gone', async () => {
    let loads = 0;
    const signals: AbortSignal[] = [];
    const pollers = new RunPollers(
      async (id, stopped) => {
        signals.push(stopped);
        return running(id, ++loads);
      },
      runLog,
      20,
    );
    const gone = Array.from({ length: 150 }, controller);
    const subs = gone.map((g) => pollers.subscribe('ns-000000000001', g.signal));
    expect(pollers.active).toBe(1);
    // Opened at once, they all start from the same first poll.
    await Promise.all(subs.map((s) => s.next()));
    expect(loads).toBe(1);
    for (let i = 0; i < 4; i++) await Promise.all(subs.map((s) => s.next()));
    // Five rounds of 150 waits each: a poller per stream would have loaded 750 times.
    expect(loads).toBeGreaterThanOrEqual(5);
    expect(loads).toBeLessThanOrEqual(10);
    // Each read gets a signal of its own: Temporal's client never removes the listeners it adds to one.
    expect(new Set(signals).size).toBe(signals.length);
    gone.forEach((g) => g.abort());
    expect(pollers.active).toBe(0);
    const after = loads;
    await sleep(100);
    expect(loads).toBeLessThanOrEqual(after + 1);
  });

  test('a wait is answered by a poll begun after it, never an older one; each run has its own poller', async () => {
    const begun = new Map<string, number>();
    // Each load takes longer than the poll interval, so one is nearly always in flight when a stream starts waiting.
    const pollers = new RunPollers(
      async (id) => {
        const n = (begun.get(id) ?? 0) + 1;
        begun.set(id, n);
        await sleep(50);
        return running(id, n);
      },
      runLog,
      10,
    );
    const gone = controller();
    const one = pollers.subscribe('ns-000000000001', gone.signal);
    pollers.subscribe('ns-000000000002', gone.signal);
    expect(pollers.active).toBe(2);
    // The first wait joins the poll in flight; every later one waits for a poll begun after it.
    await one.next();
    for (let i = 0; i < 5; i++) {
      await sleep(i * 7);
      const before = begun.get('ns-000000000001') ?? 0;
      expect((await one.next()).state.iteration).toBeGreaterThan(before);
    }
    expect(begun.get('ns-000000000002')).toBeGreaterThan(0);
    gone.abort();
    expect(pollers.active).toBe(0);
  });

  test("a late joiner starts from the last poll without a load of its own; a run the first poll could not read rejects the first wait with that poll's error", async () => {
    let loads = 0;
    let failing = true;
    const pollers = new RunPollers(
      async (id) => {
        loads++;
        if (failing) throw new Error('no worker answered');
        return running(id, loads);
      },
      runLog,
      20,
    );
    const gone = controller();
    await expect(pollers.subscribe('ns-000000000003', gone.signal).next()).rejects.toThrow('no worker answered');
    failing = false;
    const early = pollers.subscribe('ns-000000000003', gone.signal);
    const seen = await early.next();
    const before = loads;
    const late = await pollers.subscribe('ns-000000000003', gone.signal).next();
    expect(late).toBe(seen);
    expect(loads).toBe(before);
    gone.abort();
    expect(pollers.active).toBe(0);
  });

  test('a read in flight is cancelled when the last subscriber goes: no call to Temporal outlives the streams', async () => {
    let inFlight: AbortSignal | undefined;
    const pollers = new RunPollers(
      (_id, stopped) => {
        inFlight = stopped;
        return new Promise((_resolve, reject) =>
          stopped.addEventListener('abort', () => reject(new Error('cancelled'))),
        );
      },
      runLog,
      20,
    );
    const gone = controller();
    const waiting = pollers.subscribe('ns-000000000004', gone.signal).next();
    expect(inFlight?.aborted).toBe(false);
    gone.abort();
    await expect(waiting).rejects.toBeDefined();
    expect(inFlight?.aborted).toBe(true);
  });
});
