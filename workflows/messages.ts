// The run's messages, defined once for the workflow, the API and Temporal Web's signal dialog.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { BudgetRaise, DecisionInput, ForgeStatus, RunState, RunStatus } from '../contracts/run';
import type { ProposedTask } from '../spec/schema';
import type { CampaignMerge, CampaignRunReport, CampaignState } from '../contracts/campaign';

export const approveSignal = defineSignal<[DecisionInput]>('approve');
export const rejectSignal = defineSignal<[DecisionInput]>('reject');
export const requestChangesSignal = defineSignal<[DecisionInput]>('requestChanges');
export const cancelRequestedSignal = defineSignal<[DecisionInput]>('cancelRequested');
/** A person adds to a run's spent model budget (docs/budgets.md): it goes on from its checkpoint. */
export const raiseBudgetSignal = defineSignal<[DecisionInput & BudgetRaise]>('raiseBudget');
/**
 * A limit above the run (a token's, a repo's, the server's) was changed by an admin: a run waiting for one to roll
 * over goes on now (docs/budgets.md). Anyone may send it: at worst a run tries again and is stopped again.
 */
export const budgetLimitsChangedSignal = defineSignal('budgetLimitsChanged');
/** The forge's CI status for a commit (sent by the forge webhook): kept when it is the run's pushed commit. */
export const forgeStatusSignal = defineSignal<[ForgeStatus]>('forgeStatus');
export const stateQuery = defineQuery<RunState>('state');
/** From the fleet registry: the named worker stopped reporting (or left), so a stage bound for it will never start. */
export const workerLostSignal = defineSignal<[string]>('workerLost');
/** To a plan awaiting approval: run this task again with the comment, and what needs it, then integrate again. */
export const redoTaskSignal = defineSignal<[DecisionInput & { task: string }]>('redoTask');
/** To a `tasks: auto` plan awaiting approval of its tasks: the task list corrected, to approve (or correct) next. */
export const editTasksSignal = defineSignal<[DecisionInput & { tasks: ProposedTask[] }]>('editTasks');
/** From a plan's task (or its integration) to the plan: the task's run has this status now. */
export const taskStatusSignal = defineSignal<[{ task: string; status: RunStatus }]>('taskStatus');

// Sent from here (Temporal Web, the Temporal CLI) a decision counts, but its "by" is shown as unverified: only the
// API's decisions carry the server's signature.
export const SIGNAL_DESCRIPTIONS = {
  approve:
    'Approve the run: sign the proof and deliver the branch. Input: {"comment": "…", "by": "…"} (by: recorded as unverified, via Temporal)',
  reject:
    'Reject the run: nothing is delivered. Input: {"comment": "…", "by": "…"} (by: recorded as unverified, via Temporal)',
  requestChanges:
    'Send the comment back to the agent for another iteration. Input: {"comment": "…", "by": "…"} (by: recorded as unverified, via Temporal)',
  raiseBudget:
    'Add to the model budget of a run awaiting_budget: it goes on from its checkpoint. Input: {"tokens": N, "costUsd": N, "comment": "…", "by": "…"} (by: recorded as unverified, via Temporal)',
  budgetLimitsChanged:
    "A limit above the run (a token's, a repo's, the server's) changed: a run awaiting_budget for one goes on and tries again. No input",
  cancelRequested:
    'Records who cancels the run (the API sends it before cancelling); it does not cancel. Input: {"comment": "…", "by": "…"}',
} as const;

/** From a campaign's run to the campaign: its status now, and on its end what it delivered. */
export const campaignRunSignal = defineSignal<[CampaignRunReport]>('campaignRun');
/** To a campaign: start no new runs (running ones go on) / start them again. */
export const pauseCampaignSignal = defineSignal<[DecisionInput]>('pause');
export const resumeCampaignSignal = defineSignal<[DecisionInput]>('resume');
/** To a campaign: cancel every run not ended, start none. */
export const cancelCampaignSignal = defineSignal<[DecisionInput]>('cancelCampaign');
/** To a campaign: the failed runs again, from scratch. */
export const retryCampaignSignal = defineSignal<[DecisionInput]>('retry');
/** To a campaign: a batch decision the API made, and the runs it decided (each signalled on its own). */
export const batchDecisionSignal =
  defineSignal<[DecisionInput & { kind: 'approve' | 'reject'; runs: string[] }]>('batchDecision');
/** To a campaign, from the forge webhook: a person merged the pull request of one of its succeeded runs. */
export const campaignMergedSignal = defineSignal<[CampaignMerge]>('pullRequestMerged');
export const campaignStateQuery = defineQuery<CampaignState>('campaignState');
