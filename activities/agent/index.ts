import type { ActivityDeps } from '../../runtime/deps';
import { proposeTasks } from './proposeTasks';
import { reviewWithAgent } from './reviewWithAgent';
import { runAgent } from './runAgent';

export function agentActivities(deps: ActivityDeps) {
  return {
    proposeTasks: proposeTasks(deps),
    reviewWithAgent: reviewWithAgent(deps),
    runAgent: runAgent(deps),
  };
}
