import type { SandboxDriverName } from '../spec/schema';

/** The queue a run's claim goes to: only workers offering its sandbox driver poll it. */
export function claimQueue(taskQueue: string, driver: SandboxDriverName): string {
  return `${taskQueue}/claim/${driver}`;
}
