/** "median … ms, p95 … ms, min … ms (n=…)" of a list of milliseconds. */
export function stats(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const fmt = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(0));
  return `median ${fmt(at(0.5))} ms, p95 ${fmt(at(0.95))} ms, min ${fmt(sorted[0])} ms (n=${values.length})`;
}

export const elapsedMs = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e6;
