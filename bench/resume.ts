// What bench:fleet reads from a run's Temporal history about lost workers: where the time from a SIGKILL to the run
// running again goes, and whether a run was moved off a worker that was still alive (a false alarm).
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { spawn, type ChildProcess } from 'node:child_process';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const { EventType, TimeoutType } = temporal.api.enums.v1;

/** A workspace activity that timed out as a lost worker's does (workflows/specRun/errors.ts isWorkerLost). */
export interface LostWorker {
  at: number;
  /** The worker's name, from its own queue (`<task queue>/worker/<name>`). */
  worker: string;
  activity: string;
}

/** Milliseconds from the kill to each step of the move, from the run's history. */
export interface ResumeBreakdown {
  /** The server timed the stage out (missed heartbeats). */
  noticed: number;
  /** A worker picked up the workflow task that handles it (a dead worker's sticky queue delays this). */
  workflowTask: number;
  /** Another worker claimed the run (a sandbox slot). */
  claimed: number;
  /** The workspace is back on it, from the last checkpoint. */
  provisioned: number;
  /** The lost stage is running again: the run has resumed. */
  resumed: number;
}

const at = (e: HistoryEvent) => tsToMs(e.eventTime);

/** Activity names and queues by their scheduled event's id. */
function scheduled(events: HistoryEvent[]): Map<string, { activity: string; queue: string }> {
  const byId = new Map<string, { activity: string; queue: string }>();
  for (const e of events) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a) byId.set(String(e.eventId), { activity: a.activityType?.name ?? '', queue: a.taskQueue?.name ?? '' });
  }
  return byId;
}

/**
 * Every time the run was presumed to have lost a worker: a workspace activity timed out on heartbeat or in its queue.
 */
export function lostWorkers(events: HistoryEvent[]): LostWorker[] {
  const acts = scheduled(events);
  const lost: LostWorker[] = [];
  for (const e of events) {
    const a = e.activityTaskTimedOutEventAttributes;
    const type = a?.failure?.timeoutFailureInfo?.timeoutType;
    if (!a || (type !== TimeoutType.TIMEOUT_TYPE_HEARTBEAT && type !== TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START))
      continue;
    const act = acts.get(String(a.scheduledEventId));
    const worker = /\/worker\/(.+)$/.exec(act?.queue ?? '')?.[1];
    // A teardown sent to a worker presumed lost (workspace.ts tearDownLost) times out there unclaimed: it moves
    // nothing.
    if (act && worker && act.activity !== 'teardownWorkspace') lost.push({ at: at(e), worker, activity: act.activity });
  }
  return lost;
}

/** The moments after a kill at `killedAt` (ms since the epoch) until the lost stage runs again, from the history. */
export function resumeBreakdown(events: HistoryEvent[], killedAt: number): ResumeBreakdown | undefined {
  const acts = scheduled(events);
  const lost = lostWorkers(events).find((l) => l.at >= killedAt);
  if (!lost) return undefined;
  const after = events.filter((e) => at(e) >= lost.at);
  const first = (pred: (e: HistoryEvent) => boolean) => {
    const e = after.find(pred);
    return e ? at(e) - killedAt : NaN;
  };
  const ofActivity =
    (type: number, name: string, attrs: (e: HistoryEvent) => { scheduledEventId?: unknown } | null | undefined) =>
    (e: HistoryEvent) =>
      e.eventType === type && acts.get(String(attrs(e)?.scheduledEventId))?.activity === name;
  return {
    noticed: lost.at - killedAt,
    workflowTask: first((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED),
    claimed: first(
      ofActivity(
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        'claimWorkspace',
        (e) => e.activityTaskCompletedEventAttributes,
      ),
    ),
    provisioned: first(
      ofActivity(
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        'provisionWorkspace',
        (e) => e.activityTaskCompletedEventAttributes,
      ),
    ),
    resumed: first(
      ofActivity(
        EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
        lost.activity,
        (e) => e.activityTaskStartedEventAttributes,
      ),
    ),
  };
}

export async function historyOf(client: Client, id: string): Promise<HistoryEvent[]> {
  return (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
}

/**
 * Runs moved off a worker that was alive at the time: `deaths` maps a worker name's prefix (`<host>-<pid>-`) to when
 * the bench killed it; a move at or after its death is the real thing.
 */
export async function movedWhileAlive(
  client: Client,
  ids: string[],
  deaths: Map<string, number>,
): Promise<{ moves: number; falseAlarms: string[] }> {
  let moves = 0;
  const falseAlarms: string[] = [];
  for (const id of ids) {
    for (const l of lostWorkers(await historyOf(client, id))) {
      moves++;
      const died = [...deaths].find(([prefix]) => l.worker.startsWith(prefix))?.[1];
      if (died === undefined || l.at < died)
        falseAlarms.push(`${id}: ${l.activity} on ${l.worker} timed out while it was alive`);
    }
  }
  return { moves, falseAlarms };
}

/** Processes that keep every core busy (a loaded machine) until stopped. */
export function cpuHogs(n: number): { stop(): void } {
  const hogs: ChildProcess[] = Array.from({ length: n }, () =>
    spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
  );
  return {
    stop() {
      for (const h of hogs) h.kill('SIGKILL');
    },
  };
}
