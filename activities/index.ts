import { agentActivities } from './agent';
import { campaignActivities } from './campaign';
import { campaignProofActivities } from './proof/writeCampaignProof';
import { checkActivities } from './checks/runChecks';
import type { ActivityDeps } from '../runtime/deps';
import { deliverActivities } from './delivery/deliverBranch';
import { environmentActivities } from './setup/prepareEnvironment';
import { forgeActivities } from './forge';
import { heartbeating } from '../runtime/heartbeat';
import { notifyActivities } from './notify';
import { planActivities } from './plan/mergeTaskBase';
import { proofActivities } from './proof/writeProof';
import { rebaseActivities } from './rebase/rebaseOntoBase';
import { repoFileActivities } from './repoConfig/readRepoFile';
import { reviewActivities } from './review';
import { signActivities } from './proof/signCommits';
import { workspaceActivities } from './workspace';

export type { ActivityDeps } from '../runtime/deps';

/**
 * Every activity of the pipeline, bound to one worker's dependencies, by the task queue that serves it (each queue
 * has its own Temporal worker, which registers only these):
 * - shared: the run's task queue, any worker; they read and write only what every worker reaches (the artifact
 *   store, the run log, git remotes, webhooks);
 * - workspace: the queue of the worker holding the run's workspace (sandbox affinity);
 * - claim: the claim queue of the run's sandbox driver, polled only by workers offering it.
 */
export function createActivities(deps: ActivityDeps) {
  const { claimWorkspace, findDriver, provisionWorkspace, teardownWorkspace } = workspaceActivities(deps);
  return {
    shared: {
      ...heartbeating({
        findDriver,
        ...reviewActivities(deps),
        ...rebaseActivities(deps),
        ...signActivities(deps),
        ...proofActivities(deps),
        ...campaignProofActivities(deps),
        ...deliverActivities(deps),
        ...repoFileActivities(deps),
        ...forgeActivities(deps),
        ...planActivities(deps),
        ...campaignActivities(deps),
        // Runs started before the claim-by-driver patch (workflows/patches.ts) claim here, without input.
        claimWorkspace,
      }),
      // Not wrapped: notifyWebhooks keeps the receivers that accepted in its heartbeat details, and a bare periodic
      // heartbeat would wipe them (each retry would then post again to receivers already told).
      ...notifyActivities(deps),
    },
    workspace: {
      provisionWorkspace,
      teardownWorkspace,
      ...environmentActivities(deps),
      ...agentActivities(deps),
      ...checkActivities(deps),
    },
    claim: { claimWorkspace },
  };
}

type QueueActivities = ReturnType<typeof createActivities>;
export type SharedQueueActivities = QueueActivities['shared'];
export type WorkspaceQueueActivities = QueueActivities['workspace'];
export type ClaimQueueActivities = QueueActivities['claim'];
