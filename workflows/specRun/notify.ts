import { isCancellation, log, patched } from '@temporalio/workflow';
import type { RunEvent, RunNotice } from '../../contracts/notify';
import { WEBHOOK_NOTIFICATIONS } from '../patches';
import type { RunContext } from './context';
import { errorMessage } from './errors';
import { runNotice } from './inputs';
import { anyWorker, webhooks } from './proxies';

/**
 * Tell the server's webhooks (activities/notify/notifyWebhooks.ts), beside the pipeline: a slow or failing receiver
 * never holds it up.
 */
export function notify(ctx: RunContext, event: RunEvent): void {
  if (!patched(WEBHOOK_NOTIFICATIONS)) return;
  ctx.notifications.push(deliverNotice(runNotice(ctx, event)));
}

/** The notice to the webhooks; out of retries, the run's log says who was not told. Never throws. */
export async function deliverNotice(notice: RunNotice): Promise<void> {
  try {
    await webhooks.notifyWebhooks(notice);
  } catch (err) {
    if (isCancellation(err)) return;
    // Out of retries: the run goes on, and its log says who was not told.
    await anyWorker
      .logFailedNotification({ runId: notice.runId, event: notice.event, reason: errorMessage(err) })
      .catch((e) => log.warn('could not log a failed notification', { error: errorMessage(e) }));
  }
}
