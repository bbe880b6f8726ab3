// Model prices, for cost budgets: a built-in table by model-name prefix, which NIGHTSHIFT_MODEL_PRICES extends.
export interface ModelPrices {
  inputPerMTok: number;
  outputPerMTok: number;
}

/** USD per million tokens (input, output) by model-name prefix; NIGHTSHIFT_MODEL_PRICES adds to or overrides it. */
const PRICES: Record<string, [number, number]> = {
  'claude-opus': [15, 75],
  'claude-sonnet': [3, 15],
  'claude-haiku': [0.8, 4],
  'gpt-5': [1.25, 10],
  'gpt-4o': [2.5, 10],
};

export function pricesFor(model: string | undefined, extra: Record<string, [number, number]>): ModelPrices | undefined {
  const table = { ...PRICES, ...extra };
  const prefix = Object.keys(table)
    .filter((p) => model?.startsWith(p))
    .sort((a, b) => b.length - a.length)[0];
  return prefix ? { inputPerMTok: table[prefix][0], outputPerMTok: table[prefix][1] } : undefined;
}
