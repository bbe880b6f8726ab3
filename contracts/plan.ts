// A plan's bookkeeping (issue 24, docs/plans.md): what the plan's workflow shows of each task, and the activity that
// lays out a task's base.

/** Where a task is: waiting for its needs, running as its own run, passed (checks and review), failed, or skipped. */
export type TaskState = 'waiting' | 'running' | 'passed' | 'failed' | 'skipped';

export interface PlanTaskState {
  id: string;
  needs: string[];
  state: TaskState;
  /** The task's own run: `<plan>-<task id>`. */
  runId: string;
  /** Why it failed, or which task it waited on when it was skipped. */
  reason?: string;
  /** Its delivered branch and commit, once passed. */
  branch?: string;
  commit?: string;
  startedAt?: string;
  endedAt?: string;
}

/** A task's base: the plan's base with the branches of the tasks it needs merged in, as a branch of the source repo. */
export interface MergeTaskBaseInput {
  runId: string;
  repo: string;
  base?: string;
  branches: string[];
  /** The branch made: `nightshift/<plan>/base-<task>`. */
  target: string;
}

export interface MergeTaskBaseOutput {
  commit: string;
  /** Files two needs changed in ways git could not merge: committed with their conflict markers, for the agent. */
  conflicts: string[];
}
