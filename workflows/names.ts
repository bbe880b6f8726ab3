/**
 * The workflow type a run is started as (the name of the `specRun` function): for visibility queries and schedules,
 * which name it as a string. Imports nothing, so the API, the CLI, tests and benchmarks may all use it.
 */
export const SPEC_RUN_WORKFLOW = 'specRun';
