// Budget strings: an amount (`5usd`, `$5`, `100ktokens`) and, for limits above a run, a window (`20usd/day`,
// `1mtokens/month`, `0.5usd/30s`). Windows are aligned (a day is a UTC day; `30s` starts on a multiple of 30 s since
// the epoch), so every gateway on every worker agrees on which window a request falls in.

export interface Amount {
  unit: 'usd' | 'tokens';
  amount: number;
}

export interface BudgetLimit extends Amount {
  window: string;
  /** As written, normalized: `20usd/day`. */
  text: string;
}

const NAMED_WINDOWS = ['hour', 'day', 'week', 'month'] as const;
const SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** `5usd`, `$5`, `+5usd` (a leading + is allowed), `100000tokens`, `100ktokens`, `2mtokens`; undefined otherwise. */
export function parseAmount(text: string): Amount | undefined {
  const t = text.trim().replace(/^\+/, '');
  const tokens = /^(\d+(?:\.\d+)?)(k|m)?\s*tokens?$/i.exec(t);
  if (tokens) {
    const amount = Number(tokens[1]) * ({ k: 1e3, m: 1e6 }[(tokens[2] ?? '').toLowerCase()] ?? 1);
    return Number.isInteger(amount) && amount > 0 ? { unit: 'tokens', amount } : undefined;
  }
  const usd = /^(?:\$(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*usd)$/i.exec(t);
  const amount = Number(usd?.[1] ?? usd?.[2]);
  return usd && amount > 0 && Number.isFinite(amount) ? { unit: 'usd', amount } : undefined;
}

/** A limit above a run: `<amount>/<window>`, the window `hour|day|week|month` or `<n>s|m|h|d`. */
export function parseBudget(text: string): BudgetLimit | { error: string } {
  const [amountText, window, ...rest] = text.trim().toLowerCase().split('/');
  const amount = amountText ? parseAmount(amountText) : undefined;
  const known =
    window !== undefined && ((NAMED_WINDOWS as readonly string[]).includes(window) || windowSeconds(window));
  if (!amount || !known || rest.length) {
    return {
      error: `"${text.slice(0, 40)}" is not a budget: an amount per window, as 20usd/day, 1mtokens/month or 0.5usd/30s`,
    };
  }
  const shown = amount.unit === 'usd' ? `${amount.amount}usd` : `${amount.amount}tokens`;
  return { ...amount, window, text: `${shown}/${window}` };
}

function windowSeconds(window: string): number | undefined {
  const m = /^(\d+)(s|m|h|d)$/.exec(window);
  const seconds = m ? Number(m[1]) * SECONDS[m[2] as keyof typeof SECONDS] : 0;
  return seconds > 0 ? seconds : undefined;
}

/** The window of `limit` that `now` falls in: [start, end) in epoch milliseconds. */
export function windowAt(window: string, now: number): { start: number; end: number } {
  const d = new Date(now);
  const utc = (y: number, m: number, day: number) => Date.UTC(y, m, day);
  switch (window) {
    case 'hour':
      return windowAt('1h', now);
    case 'day':
      return windowAt('1d', now);
    case 'week': {
      const start = utc(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - ((d.getUTCDay() + 6) % 7)); // Monday
      return { start, end: start + 7 * 86_400_000 };
    }
    case 'month':
      return {
        start: utc(d.getUTCFullYear(), d.getUTCMonth(), 1),
        end: utc(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
      };
    default: {
      const ms = (windowSeconds(window) ?? 86_400) * 1000;
      const start = now - (now % ms);
      return { start, end: start + ms };
    }
  }
}

/** `$20 a day`, `1000000 tokens per 30s`: for messages. */
export function describeBudget(limit: BudgetLimit): string {
  const amount = limit.unit === 'usd' ? `$${limit.amount}` : `${limit.amount} tokens`;
  return (NAMED_WINDOWS as readonly string[]).includes(limit.window)
    ? `${amount} a ${limit.window}`
    : `${amount} per ${limit.window}`;
}
