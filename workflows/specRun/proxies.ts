// The activities the run calls, one proxy per kind of task queue, each typed with only what that queue's workers
// register (activities/index.ts): a workspace activity called on the shared queue does not compile.
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { ClaimQueueActivities, SharedQueueActivities, WorkspaceQueueActivities } from '../../activities';
import type { SandboxDriverName } from '../../spec/schema';
import { claimQueue } from '../../contracts/taskQueues';
import type { RunSettings, WorkspaceRef } from '../../contracts/run';

/** Activities that any worker can run: they read and write only the shared artifact store. */
export const anyWorker = proxyActivities<SharedQueueActivities>({
  startToCloseTimeout: '5m',
  // They heartbeat (runtime/heartbeat.ts heartbeating): one in flight on a worker that dies is tried again soon.
  heartbeatTimeout: '20s',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});

/** Webhook deliveries: about 15 s of backoff in all before a notification is given up (and logged). */
const NOTIFY_RETRY = { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 5 } as const;
export const webhooks = proxyActivities<Pick<SharedQueueActivities, 'notifyWebhooks'>>({
  summary: 'notify webhooks',
  startToCloseTimeout: '1m',
  retry: NOTIFY_RETRY,
});

/** Activities bound to the worker that holds the workspace (sandbox affinity: README.md, "How it works"). */
export function onWorkspaceWorker(
  settings: RunSettings,
  ws: WorkspaceRef,
  startToCloseMs: number,
  summary: string,
): WorkspaceQueueActivities {
  const options: ActivityOptions = {
    taskQueue: ws.queue,
    summary,
    scheduleToStartTimeout: settings.workerQueueTimeoutMs,
    startToCloseTimeout: startToCloseMs,
    heartbeatTimeout: settings.heartbeatTimeoutMs,
    // Teardown must not start while a cancelled stage still runs in the sandbox (the SDK's default is TRY_CANCEL).
    cancellationType: 'WAIT_CANCELLATION_COMPLETED',
    // One attempt: a lost worker is handled by moving the run (workspace.ts), a user error must not repeat.
    retry: { maximumAttempts: 1 },
  };
  return proxyActivities<WorkspaceQueueActivities>(options);
}

/** The claim queue of a sandbox driver: a claim waits there (and on a full worker) as long as it takes. */
export function onClaimQueue(
  settings: RunSettings,
  taskQueue: string,
  driver: SandboxDriverName,
  priorityKey?: number,
): ClaimQueueActivities {
  return proxyActivities<ClaimQueueActivities>({
    taskQueue: claimQueue(taskQueue, driver),
    ...(priorityKey ? { priority: { priorityKey } } : {}),
    summary: `claim a ${driver} worker with a free sandbox slot`,
    startToCloseTimeout: '30d',
    heartbeatTimeout: settings.heartbeatTimeoutMs,
    // A full worker hands the claim back; it is offered again at once, to whichever worker polls (no backoff).
    retry: { initialInterval: '200ms', backoffCoefficient: 1, maximumInterval: '200ms' },
  });
}
