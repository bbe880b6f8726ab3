// The floor under every stage of a run, for `npm run bench:fleet`: an empty activity, scheduled, run and reported
// back. Workflow code: deterministic, only @temporalio/workflow.
import { proxyActivities } from '@temporalio/workflow';

const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '10s' });

/** `n` empty activity round trips, each as the workflow sees it (activation to activation), in ms. */
export async function activityRoundTrips(n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = Date.now();
    await noop();
    times.push(Date.now() - t);
  }
  return times;
}
