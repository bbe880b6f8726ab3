import { workflowInfo } from '@temporalio/workflow';
import type { Spec } from '../../spec/schema';
import type { Decision, RunInput, RunSettings, RunState, WorkspaceRef } from '../../contracts/run';
import { defaultBranch } from './branch';

/** The spec as the run uses it: its branch decided. */
export type RunSpec = Spec & { branch: string };

/** What the parts of one run share: its input, the state the query shows, and the run's own bookkeeping. */
export interface RunContext {
  readonly input: RunInput;
  readonly spec: RunSpec;
  readonly settings: RunSettings;
  /** The run as the state query serves it; the parts update it in place. */
  readonly state: RunState;
  /** How long one command may run in the sandbox (spec.sandbox.timeout). */
  readonly sandboxMs: number;
  /** The workspace the run holds now: none before provision, after teardown, or once its worker is lost. */
  workspace?: WorkspaceRef;
  /** The worker a provision is under way on: if it is presumed lost, it may still have made the workspace. */
  provisioningOn?: WorkspaceRef;
  /** A decision signalled while the run awaits approval, not taken yet. */
  pending?: Decision;
  /** An admin changed a limit above the run while it waited for one (budgetLimitsChanged). */
  limitsChanged?: boolean;
  /** Webhook deliveries and teardowns on workers presumed lost, under way: the workflow stays open until they end. */
  readonly notifications: Promise<void>[];
  /** Workers the fleet registry watches for this run, and those it said are gone (workspace.ts). */
  readonly watched: Set<string>;
  readonly lostWorkers: Set<string>;
}

export function createContext(input: RunInput): RunContext {
  const info = workflowInfo();
  const spec = { ...input.spec, branch: input.spec.branch ?? defaultBranch(input.spec.title, info.workflowId) };
  const state: RunState = {
    ...queuedState(input, spec.branch),
    ...(input.plan ? { plan: { id: input.plan.id, task: input.plan.task } } : {}),
    ...(input.campaign ? { campaign: { id: input.campaign.id } } : {}),
    // The integration's change is the merge of the plan's tasks: its workspace starts there.
    ...(input.plan?.start ? { checkpoint: input.plan.start } : {}),
  };
  return {
    input,
    spec,
    settings: input.settings,
    state,
    sandboxMs: spec.sandbox.timeout,
    notifications: [],
    watched: new Set(),
    lostWorkers: new Set(),
  };
}

/** A run (or a plan) as it starts, on `branch`: queued, nothing done yet. */
export function queuedState(input: RunInput, branch: string): RunState {
  const { workflowId, startTime } = workflowInfo();
  const startedAt = startTime.toISOString();
  return {
    id: workflowId,
    title: input.spec.title,
    repo: input.spec.repo,
    branch,
    base: input.spec.base,
    status: 'queued',
    iteration: 0,
    maxIterations: input.spec.limits.iterations,
    stages: [],
    checks: [],
    scopeViolations: [],
    decisions: [],
    reprovisions: 0,
    submittedBy: input.submittedBy,
    createdAt: startedAt,
    updatedAt: startedAt,
  };
}
