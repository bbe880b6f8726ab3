/**
 * The workflow type a run is started as (the name of the `specRun` function): for visibility queries and schedules,
 * which name it as a string. Imports nothing, so the API, the CLI, tests and benchmarks may all use it.
 */
export const SPEC_RUN_WORKFLOW = 'specRun';

/** The workflow type a plan is started as (`planRun`): its tasks are `specRun`s of their own (docs/plans.md). */
export const PLAN_RUN_WORKFLOW = 'planRun';

/** A visibility query's clause for every run, plans included. */
export const RUN_WORKFLOWS_QUERY = `WorkflowType IN ('${SPEC_RUN_WORKFLOW}', '${PLAN_RUN_WORKFLOW}')`;

/** The workflow type a campaign is started as (`campaignRun`): its repos are `specRun`s of their own. */
export const CAMPAIGN_RUN_WORKFLOW = 'campaignRun';
