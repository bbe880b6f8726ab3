// What a run's gateway shares with every other: the spend ledger (budget/ledger.ts) it books each request in, and the
// limits above the run (a token's, a repo's, the server's) it asks the ledger about before each one.
import { admit, settle, type Admission, type RequestUsage, type ScopedLimit } from '../budget/ledger';
import type { Spender } from '../contracts/spend';

export interface SharedBudget {
  /** The limits this run is held to, besides its own. */
  readonly limits: ScopedLimit[];
  admit(id: string): Admission;
  /** `usage.model` empty: the response named none. */
  settle(id: string, usage: RequestUsage): void;
}

export function sharedBudget(home: string, who: Spender, limits: ScopedLimit[], model?: string): SharedBudget {
  return {
    limits,
    // With no limit above the run there is nothing to ask, and no lock to take.
    admit: (id) => (limits.length ? admit(home, id, limits) : { admitted: true }),
    settle: (id, usage) => settle(home, id, who, limits, { ...usage, model: usage.model || model || 'unknown' }),
  };
}
