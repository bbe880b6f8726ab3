import type { ActivityDeps } from '../../runtime/deps';
import { commentOnForge } from './commentOnForge';
import { interpretForgeEvent } from './interpretForgeEvent';
import { publishForReview } from './publishForReview';

export function forgeActivities(deps: ActivityDeps) {
  return {
    publishForReview: publishForReview(deps),
    interpretForgeEvent: interpretForgeEvent(deps),
    commentOnForge: commentOnForge(deps),
  };
}
