import { agentActivities } from './agent';
import { checkActivities } from './checks';
import type { ActivityDeps } from './deps';
import { deliverActivities } from './deliver';
import { notifyActivities } from './notify';
import { proofActivities } from './proof';
import { rebaseActivities } from './rebase';
import { reviewActivities } from './review';
import { workspaceActivities } from './workspace';

export type { ActivityDeps } from './deps';

/** Every activity of the pipeline, bound to one worker's dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...workspaceActivities(deps),
    ...agentActivities(deps),
    ...checkActivities(deps),
    ...reviewActivities(deps),
    ...rebaseActivities(deps),
    ...proofActivities(deps),
    ...deliverActivities(deps),
    ...notifyActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
