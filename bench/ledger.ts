// `npm run bench:ledger`: what the spend ledger adds to each model request (budget/ledger.ts): one admit and one
// settle, each under spend.json's lock, against ledgers of growing history (rows: day × token × repo × model, a file
// a day). Prints the time per request beside its floor: the ledger must stay well under a model's own latency.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { admit, readSpendRows, settle, type ScopedLimit } from '../budget/ledger';
import { parseBudget, type BudgetLimit } from '../spec/budget';
import { elapsedMs, printTable, runBench, stats } from './stats';
import { writeAtomic } from '../config/jsonFile';

/** Per request (admit + settle), at a year of a team's history (about 11,000 rows). */
const FLOOR_MS = 20;
const REQUESTS = Number(process.env.BENCH_LEDGER_REQUESTS || 200);
const HISTORIES = [0, 1_000, 11_000, 50_000];

/** A ledger with `rows` rows of history, written as the ledger writes it. */
function seeded(rows: number): string {
  const home = mkdtempSync(path.join(os.tmpdir(), 'bench-ledger-'));
  const start = Date.parse('2025-01-01');
  const history = Array.from({ length: rows }, (_, i) => ({
    day: new Date(start + Math.floor(i / 30) * 86_400_000).toISOString().slice(0, 10),
    token: `token-${i % 5}`,
    repo: `repo-${i % 3}`,
    model: `claude-sonnet-4-${i % 2}`,
    requests: 40,
    inputTokens: 120_000,
    outputTokens: 8_000,
    costUsd: 0.48,
  }));
  for (const day of new Set(history.map((r) => r.day)))
    writeAtomic(
      path.join(home, 'spend', `${day}.json`),
      history.filter((r) => r.day === day),
    );
  return home;
}

runBench(async () => {
  const limits: ScopedLimit[] = [
    { scope: 'token alice', limit: parseBudget('20usd/day') as BudgetLimit },
    { scope: 'the server', limit: parseBudget('200usd/day') as BudgetLimit },
  ];
  const table = [
    ['history rows', 'day files', 'all rows read', 'per request (admit + settle)', `floor ${FLOOR_MS} ms`],
  ];
  for (const rows of HISTORIES) {
    const home = seeded(rows);
    const times: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const started = process.hrtime.bigint();
      admit(home, `r${i}`, limits);
      settle(home, `r${i}`, { token: 'alice', repo: 'acme' }, limits, {
        model: 'claude-sonnet-4-5',
        inputTokens: 3000,
        outputTokens: 200,
        costUsd: 0.012,
      });
      times.push(elapsedMs(started));
    }
    const size = `${readdirSync(path.join(home, 'spend')).length} days`;
    const reading = process.hrtime.bigint();
    readSpendRows(home); // what GET /v1/spend and /metrics read
    const read = `${elapsedMs(reading).toFixed(0)} ms`;
    const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
    table.push([String(rows), size, read, stats(times), median <= FLOOR_MS ? 'within' : 'OVER']);
    rmSync(home, { recursive: true, force: true });
  }
  printTable(table);
});
