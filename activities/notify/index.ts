import type { ActivityDeps } from '../../runtime/deps';
import { logFailedNotification } from './logFailedNotification';
import { notifyWebhooks } from './notifyWebhooks';

export function notifyActivities(deps: ActivityDeps) {
  return {
    notifyWebhooks: notifyWebhooks(deps),
    logFailedNotification: logFailedNotification(deps),
  };
}
