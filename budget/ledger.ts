// The spend ledger: every gateway's metered usage, across runs and workers, in the home workers share with the API:
// `spend.json`, the limits' windows and the requests in flight (small: read and written at each request), and
// `spend/<UTC day>.json`, that day's rows (only today's is written), all changed under spend.json's lock. It is both
// the spend view's source and what enforces the limits above a run (per token, per repo, server-wide): a request is
// admitted only while each of its limits has room, and near a limit only one request at a time goes, so runs
// together overspend by at most one request.
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { readJson, withLock, writeAtomic } from '../config/jsonFile';
import { SpendRowSchema, type Spender, type SpendRow } from '../contracts/spend';
import { describeBudget, windowAt, type BudgetLimit } from '../spec/budget';

/** A limit and whose it is: `token alice`, `repo acme`, `server`. */
export interface ScopedLimit {
  scope: string;
  limit: BudgetLimit;
}

export type Admission =
  | { admitted: true }
  /** Others are in flight near a limit: ask again shortly. */
  | { wait: string }
  /** A limit is spent: refused until `until` (epoch ms), when its window rolls over. */
  | { refused: string; until: number };

export interface RequestUsage {
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

// A request in flight longer than this is presumed lost with its worker: it no longer holds a place near a limit.
const INFLIGHT_EXPIRY_MS = 15 * 60_000;

const WindowSchema = z.object({ start: z.number(), spent: z.number(), largest: z.number() });
const LedgerSchema = z.object({
  /** Spent per limit key (`scope|unit|window`) in its current window, and the largest single request it has seen. */
  windows: z.record(z.string(), WindowSchema),
  inflight: z.record(z.string(), z.object({ keys: z.array(z.string()), at: z.number() })),
});
type Ledger = z.infer<typeof LedgerSchema>;

const ledgerFile = (home: string) => path.join(home, 'spend.json');
const daysDir = (home: string) => path.join(home, 'spend');
const DayRowsSchema = z.array(SpendRowSchema);
const keyOf = ({ scope, limit }: ScopedLimit) => `${scope}|${limit.unit}|${limit.window}`;
const measure = (l: ScopedLimit, u: RequestUsage) =>
  l.limit.unit === 'usd' ? u.costUsd : u.inputTokens + u.outputTokens;

function read(home: string): Ledger {
  return readJson(ledgerFile(home), LedgerSchema, { windows: {}, inflight: {} });
}

/** Every row of the ledger, oldest day first (for the spend view and the metrics). */
export function readSpendRows(home: string): SpendRow[] {
  const dir = daysDir(home);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f))
    .sort()
    .flatMap((f) => readJson(path.join(dir, f), DayRowsSchema, []));
}

/** `change` applied to the ledger under its lock: synchronous, a few milliseconds, so nothing interleaves. */
function withLedger<T>(home: string, change: (ledger: Ledger) => T): T {
  const file = ledgerFile(home);
  return withLock(file, () => {
    const ledger = read(home);
    const result = change(ledger);
    writeAtomic(file, ledger);
    return result;
  });
}

/** The window of `l` that `now` is in, started afresh when the last one it spent in has ended. */
function windowOf(ledger: Ledger, l: ScopedLimit, now: number): Ledger['windows'][string] {
  const { start } = windowAt(l.limit.window, now);
  const w = (ledger.windows[keyOf(l)] ??= { start, spent: 0, largest: 0 });
  if (w.start !== start) Object.assign(w, { start, spent: 0 });
  return w;
}

/**
 * Whether request `id` may go now under `limits`; admitted, it holds a place until settled. Near a limit (no room
 * for one more request as large as the largest so far beside those in flight) requests go one at a time.
 */
export function admit(home: string, id: string, limits: ScopedLimit[], now = Date.now()): Admission {
  return withLedger(home, (ledger) => {
    for (const [other, { at }] of Object.entries(ledger.inflight))
      if (at < now - INFLIGHT_EXPIRY_MS) delete ledger.inflight[other];
    const spent: string[] = [];
    let until = 0;
    let crowded: string | undefined;
    for (const l of limits) {
      const w = windowOf(ledger, l, now);
      if (w.spent >= l.limit.amount) {
        const used = l.limit.unit === 'usd' ? `$${w.spent.toFixed(6)}` : `${w.spent} tokens`;
        spent.push(`${l.scope}'s budget of ${describeBudget(l.limit)} (used ${used})`);
        until = Math.max(until, windowAt(l.limit.window, now).end);
        continue;
      }
      const flying = Object.values(ledger.inflight).filter((f) => f.keys.includes(keyOf(l))).length;
      // No request of this scope finished yet: nothing tells how large one is, so one at a time.
      if (flying && (!w.largest || w.spent + (flying + 1) * w.largest >= l.limit.amount)) crowded = l.scope;
    }
    if (spent.length) {
      return { refused: `nightshift: ${spent.join(' and ')} is spent until ${new Date(until).toISOString()}`, until };
    }
    if (crowded) return { wait: `near ${crowded}'s budget, another request is in flight` };
    if (limits.length) ledger.inflight[id] = { keys: limits.map(keyOf), at: now };
    return { admitted: true };
  });
}

/** Books a finished request: the spend view's row, and every limit's window (its place in flight released). */
export function settle(
  home: string,
  id: string,
  who: Spender,
  limits: ScopedLimit[],
  usage: RequestUsage,
  now = Date.now(),
): void {
  withLedger(home, (ledger) => {
    delete ledger.inflight[id];
    for (const l of limits) {
      const w = windowOf(ledger, l, now);
      const amount = measure(l, usage);
      w.spent += amount;
      w.largest = Math.max(w.largest, amount);
    }
    bookRow(home, new Date(now).toISOString().slice(0, 10), { ...who, model: usage.model }, usage);
  });
}

/** Adds a request to its day's row for who spent it on which model (that day's file only: history stays put). */
function bookRow(home: string, day: string, key: Spender & { model: string }, usage: RequestUsage): void {
  const file = path.join(daysDir(home), `${day}.json`);
  const rows = readJson(file, DayRowsSchema, []);
  let row = rows.find((r) => r.token === key.token && r.repo === key.repo && r.model === key.model);
  if (!row) {
    row = { day, ...key, requests: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
    rows.push(row);
  }
  row.requests++;
  row.inputTokens += usage.inputTokens;
  row.outputTokens += usage.outputTokens;
  row.costUsd += usage.costUsd;
  writeAtomic(file, rows);
}
