// Every patched() id of the workflows, in one place. A patch lets histories recorded before a change replay the way
// they ran. One can be deprecated (deprecatePatch, then removed with its old branch a release later) once no open run
// started before the change, and the recorded histories in test/fixtures/histories that predate it are retired.

/**
 * Webhook notifications (awaiting_approval, succeeded, failed; workflows/specRun/notify.ts). Runs started before them
 * replay without (as do the recorded histories but notified.json).
 */
export const WEBHOOK_NOTIFICATIONS = 'webhook-notifications';

/**
 * The claim goes to the queue of the run's sandbox driver (after findDriver) and waits there for a free sandbox slot.
 * Runs started before it (and every recorded history) claimed any worker with claimWorkspace() on the shared queue,
 * which still serves it for them (activities/index.ts).
 */
export const CLAIM_BY_DRIVER = 'claim-by-driver';

/**
 * The rebase stage between approval and the proof. Runs started before it (and the recorded histories but
 * rebase-conflict.json) went from approval straight to the proof.
 */
export const REBASE_BEFORE_DELIVERY = 'rebase-before-delivery';

/**
 * The workspace is torn down right after the review (or the approval), not at the end of the run. Runs started before
 * it (and every recorded history) held their workspace until the end when no approval was required.
 */
export const FREE_WORKSPACE_AFTER_REVIEW = 'free-workspace-after-review';

/**
 * A worker presumed lost (its provision or stage timed out, as when Temporal restarts under load) may be alive and
 * still hold the run's workspace and sandbox slot: once the run is provisioned on another worker, the lost one is
 * told to tear it down (a dead one never picks the task up). Runs started before it (and every recorded history)
 * did not.
 */
export const TEARDOWN_LOST_WORKSPACE = 'teardown-lost-workspace';

/**
 * The run's commits are signed (git's SSH signing, the server's key) at the start of the proof stage, and the signed
 * branch is what the proof names and delivery lands. Runs started before it (and every recorded history) delivered
 * their commits unsigned.
 */
export const SIGNED_COMMITS = 'signed-commits';

/**
 * A run watches, through the fleet registry, the worker that holds its workspace: when the registry finds the worker
 * gone (its reports stopped, or it left), a stage or teardown bound for its queue is given up at once instead of
 * after the queue's schedule-to-start timeout. Runs started before it (and every recorded history) waited that out.
 */
export const WORKER_LOST_FROM_REGISTRY = 'worker-lost-from-registry';

/**
 * A campaign reads each repo's `.nightshift.yml` before starting its run, whose checks, setup and scope it overrides.
 * Campaigns started before it (and every recorded history) started each run with the campaign's spec alone.
 */
export const CAMPAIGN_REPO_OVERRIDES = 'campaign-repo-overrides';

/**
 * A campaign signs its proof (activities/proof/writeCampaignProof.ts) each time it ends (succeeded, partial, failed
 * or cancelled; again when a retry ends it anew) and keeps its digest as `proofId`. Campaigns started before it
 * ended without one.
 */
export const CAMPAIGN_PROOF = 'campaign-proof';

/**
 * A campaign that succeeded stays open while a pull request of its runs is not merged (until a cancel or the approval
 * timeout), to count the merges the forge's webhook reports. Campaigns started before it (and every recorded
 * history) ended as they succeeded.
 */
export const CAMPAIGN_AWAITS_MERGES = 'campaign-awaits-merges';

/**
 * A run whose model budget is spent asks for more (`limits.onExceed: ask`): it waits in `awaiting_budget` for a raise
 * instead of failing (workflows/specRun/budget.ts). Runs started before it failed, as every recorded history did.
 */
export const BUDGET_ASK = 'budget-ask';
