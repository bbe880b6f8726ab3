import type { ActivityDeps } from '../../runtime/deps';
import { checkScope } from './checkScope';
import { reviewChanges } from './reviewChanges';

export function reviewActivities(deps: ActivityDeps) {
  return {
    checkScope,
    reviewChanges: reviewChanges(deps),
  };
}
