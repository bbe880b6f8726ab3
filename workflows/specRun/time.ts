// Time as the workflow sees it (deterministic in workflow code: Temporal replays the clock) and as people write it.

export const MINUTE = 60_000;

export function nowIso(): string {
  return new Date().toISOString();
}

/** 259200000 → "72h", 90000 → "90s": how a person wrote it. */
export function humanDuration(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${ms}ms`;
}
