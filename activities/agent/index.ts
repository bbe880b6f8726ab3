import type { ActivityDeps } from '../../runtime/deps';
import { reviewWithAgent } from './reviewWithAgent';
import { runAgent } from './runAgent';

export function agentActivities(deps: ActivityDeps) {
  return {
    reviewWithAgent: reviewWithAgent(deps),
    runAgent: runAgent(deps),
  };
}
