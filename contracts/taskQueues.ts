import type { SandboxDriverName } from '../spec/schema';

/** The queue a run's claim goes to: only workers offering its sandbox driver poll it. */
export function claimQueue(taskQueue: string, driver: SandboxDriverName): string {
  return `${taskQueue}/claim/${driver}`;
}

/**
 * The Temporal priority (1 first, 5 last; 3 by default) of a campaign's runs and their claims of a sandbox slot: a
 * newer single run's claim is served first (docs/campaigns.md, "Fairness").
 */
export const CAMPAIGN_RUN_PRIORITY = 4;
