/**
 * A gate that lets `n` pieces of work run at once, the rest waiting in order: runs queued together, a few at a time.
 */
export function takingTurns(n: number): <T>(work: () => Promise<T>) => Promise<T> {
  let slots = n;
  const waiting: (() => void)[] = [];
  return async (work) => {
    if (slots > 0) slots--;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else slots++;
    }
  };
}
