// A plan's bookkeeping (issue 24, docs/plans.md): what the plan's workflow shows of each task, and the activity that
// lays out a task's base.
import type { ProposedTask, Spec } from '../spec/schema';
import type { AgentResult, GatewayUsage, RunStatus } from './run';

/** Where a task is: waiting for its needs, running as its own run, passed (checks and review), failed, or skipped. */
export type TaskState = 'waiting' | 'running' | 'passed' | 'failed' | 'skipped';

export interface PlanTaskState {
  id: string;
  needs: string[];
  state: TaskState;
  /** The task's own run: `<plan>-<task id>`. */
  runId: string;
  /** Its run's status, as the run last told the plan. */
  status?: RunStatus;
  /** Why it failed, or which task it waited on when it was skipped. */
  reason?: string;
  /** Its delivered branch and commit, and its proof, once passed. */
  branch?: string;
  commit?: string;
  proofId?: string;
  startedAt?: string;
  endedAt?: string;
}

/**
 * The plan's base with tasks' branches merged in: a task's base, as a branch of the source repo, or the integration's
 * start, as a bundle in the artifact store (a checkpoint the integration's workspace is provisioned at).
 */
export interface MergeTaskBaseInput {
  runId: string;
  repo: string;
  base?: string;
  branches: string[];
  /** The branch made: a task's base (`nightshift/<plan>.tasks/<task>.base`), or the plan's branch in a bundle. */
  target: string;
  /** `branch`: made in the source repo; `bundle`: stored as a bundle over the base's commit. */
  as: 'branch' | 'bundle';
  /** The run whose commits the merges are (their `Nightshift-Run` trailer): the integration's, for its start. */
  commitsOf?: string;
}

export interface MergeTaskBaseOutput {
  commit: string;
  /** Files two needs changed in ways git could not merge: committed with their conflict markers, for the agent. */
  conflicts: string[];
  /** As a bundle: its artifact id (none when the merge is the base itself). */
  bundleId?: string;
}

/** A `tasks: auto` plan's task list as it stands: the agent's proposal, or a person's correction of it. */
export interface TaskProposal {
  tasks: ProposedTask[];
  /** `agent`, or the name of the person whose correction this is. */
  by: string;
  at: string;
  comment?: string;
}

/** The planning agent's turn: the plan's goal, in its sandbox at the base, writing the task list. */
export interface ProposeTasksInput {
  runId: string;
  title: string;
  goal: string;
  agent: Spec['agent'];
  sandbox: Spec['sandbox'];
  secrets: string[];
  limits: Spec['limits'];
  modelUsage?: GatewayUsage;
  timeoutMs: number;
  iteration: number;
  baseCommit: string;
  maxTasks: number;
  /** Why the last list was refused. */
  feedback?: string;
}

export interface ProposeTasksOutput {
  /** The list, when it passed the schema and the graph's rules; else the problems, for the next attempt. */
  tasks?: ProposedTask[];
  problems?: string[];
  /** The agent's command result (its log, summary, transcript), for the run's state. */
  result: AgentResult;
  modelUsage?: GatewayUsage;
  budgetExhausted?: string;
}
