export interface Percentiles {
  p50: number;
  p90: number;
  p95: number;
  min: number;
  n: number;
}

/** Median, 90th and 95th percentile and minimum of a list of milliseconds. */
export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p90: at(0.9), p95: at(0.95), min: sorted[0], n: values.length };
}

/** "median … ms, p95 … ms, min … ms (n=…)" of a list of milliseconds. */
export function stats(values: number[]): string {
  const p = percentiles(values);
  const fmt = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(0));
  return `median ${fmt(p.p50)} ms, p95 ${fmt(p.p95)} ms, min ${fmt(p.min)} ms (n=${p.n})`;
}

export const elapsedMs = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e6;

/** Rows of cells as columns padded to their widest cell. */
export function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));
}

/** A bench's entry point: exit 0 when it is done, 1 with one line when it failed. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      console.error(`bench failed: ${err.message}`);
      process.exit(1);
    },
  );
}
