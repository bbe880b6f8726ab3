// The inputs of the run's activities, built from the run's spec and state as they are when called.
import type { AgentInput, AgentReviewInput } from '../../contracts/agent';
import type { ChecksInput } from '../../contracts/checks';
import type { DeliverInput } from '../../contracts/delivery';
import type { EnvironmentInput, SetupStageInput } from '../../contracts/setup';
import type { RunEvent, RunNotice } from '../../contracts/notify';
import type { RebaseInput } from '../../contracts/rebase';
import type { SignInput } from '../../contracts/proof';
import type { PublishInput } from '../../contracts/forge';
import type { ProvisionInput } from '../../contracts/workspace';
import type { ProposeTasksInput } from '../../contracts/plan';
import type { Spender } from '../../contracts/spend';
import { DEFAULT_PLAN_MAX_TASKS, INTEGRATION_TASK } from '../../spec/plan';
import { pullRequestBody } from '../pullRequestBody';
import type { RunContext } from './context';
import { nowIso } from './time';

export function provisionInput(ctx: RunContext): ProvisionInput {
  const { spec, state } = ctx;
  return {
    runId: state.id,
    repo: spec.repo,
    base: spec.base,
    branch: spec.branch,
    sandbox: spec.sandbox,
    checkpoint: state.checkpoint,
    baseCommit: state.baseCommit,
    environment: environmentInput(ctx),
  };
}

/** What the run's environment is made from, once the setup stage has made it (sandboxes before that have none). */
function environmentInput({ spec, state, input }: RunContext): EnvironmentInput | undefined {
  return spec.setup && state.environment && state.baseCommit
    ? { repo: spec.repo, baseCommit: state.baseCommit, setup: spec.setup, submittedBy: input.submittedBy }
    : undefined;
}

/** The setup stage, on the run's workspace (provisioned, at the base). */
export function setupInput({ spec, state, input }: RunContext): SetupStageInput {
  return {
    runId: state.id,
    sandbox: spec.sandbox,
    environment: { repo: spec.repo, baseCommit: state.baseCommit!, setup: spec.setup!, submittedBy: input.submittedBy },
  };
}

/** One agent iteration, from the checkpoint (none yet in the first), with the problems of the last as `feedback`. */
export function agentInput(ctx: RunContext, feedback: string | undefined): AgentInput {
  const { spec, state, sandboxMs } = ctx;
  const skipAgent = integrationJudgedFirst(ctx)
    ? 'the integration judges the merged tasks as they are first'
    : undefined;
  return {
    runId: state.id,
    title: spec.title,
    task: spec.task,
    agent: spec.agent,
    scope: spec.scope,
    checks: spec.checks,
    harness: spec.harness,
    iteration: state.iteration,
    feedback,
    baseCommit: state.baseCommit!,
    checkpoint: state.checkpoint,
    timeoutMs: sandboxMs,
    sandbox: spec.sandbox,
    secrets: spec.secrets,
    limits: spec.limits,
    modelUsage: state.modelUsage,
    spender: spenderOf(ctx),
    ...(skipAgent ? { skipAgent } : {}),
  };
}

/** What every run of an agent CLI in the run's sandbox is given besides its prompt: the agent, its limits, the run. */
function agentCliInput(ctx: RunContext) {
  const { spec, state, sandboxMs } = ctx;
  return {
    spender: spenderOf(ctx),
    runId: state.id,
    title: spec.title,
    agent: spec.agent,
    sandbox: spec.sandbox,
    secrets: spec.secrets,
    limits: spec.limits,
    modelUsage: state.modelUsage,
    timeoutMs: sandboxMs,
    iteration: state.iteration,
  };
}

/**
 * Whose the run's model spend is: its submitter's and its repo's (their budgets, the spend view). A scheduled run's
 * submitter is `<token> (schedule <id>)`: it spends its creator's budget (token names have no spaces).
 */
function spenderOf({ spec, input }: RunContext): Spender {
  return { token: input.submittedBy.replace(/ \(schedule [^)]*\)$/, ''), repo: spec.repo };
}

/** The agent reviewer's pass over the stored diff `diffId`, at the checkpoint. */
export function agentReviewInput(ctx: RunContext, diffId: string): AgentReviewInput {
  return { ...agentCliInput(ctx), task: ctx.spec.task, diffId, commit: ctx.state.checkpoint!.commit };
}

/** A `tasks: auto` plan's planning turn, at the base, told why its last list was refused. */
export function proposeTasksInput(ctx: RunContext, feedback: string | undefined): ProposeTasksInput {
  return {
    ...agentCliInput(ctx),
    goal: ctx.spec.task,
    baseCommit: ctx.state.baseCommit!,
    maxTasks: ctx.input.settings.planMaxTasks ?? DEFAULT_PLAN_MAX_TASKS,
    ...(feedback ? { feedback } : {}),
  };
}

export function checksInput(ctx: RunContext): ChecksInput {
  const { spec, state, sandboxMs } = ctx;
  return {
    runId: state.id,
    checks: spec.checks,
    iteration: state.iteration,
    checkpoint: state.checkpoint!,
    timeoutMs: sandboxMs,
    sandbox: spec.sandbox,
    secrets: spec.secrets,
    baseCommit: state.baseCommit,
    harness: spec.harness,
    environment: environmentInput(ctx),
  };
}

export function rebaseInput({ spec, state }: RunContext): RebaseInput {
  return {
    runId: state.id,
    repo: spec.repo,
    base: state.base!,
    branch: spec.branch,
    baseCommit: state.baseCommit!,
    checkpoint: state.checkpoint!,
    iteration: state.iteration,
  };
}

/** The run's commits since its base, to be signed: on a forge, those after the commit already pushed (and signed). */
export function signInput({ spec, state, input }: RunContext): SignInput {
  const since = state.pushedCommit ? { since: state.pushedCommit } : {};
  // A plan's integration signs its own commits and merges: the tasks' keep the signatures their runs gave them (and
  // their proofs name).
  const keep = input.plan?.tasks?.length ? { keep: input.plan.tasks.map((t) => t.commit) } : {};
  return {
    runId: state.id,
    repo: spec.repo,
    branch: spec.branch,
    baseCommit: state.baseCommit!,
    checkpoint: state.checkpoint!,
    ...since,
    ...keep,
  };
}

/** The checkpoint to the forge for review: its new commits signed, the branch pushed, the pull request opened. */
export function publishInput(ctx: RunContext): PublishInput {
  const { spec, state, input } = ctx;
  const pr = spec.deliver.pr || undefined;
  return {
    ...signInput(ctx),
    signedAt: nowIso(),
    base: pr?.base ?? state.base!,
    title: spec.title,
    body: pullRequestBody(state, true),
    draft: pr?.draft ?? false,
    issue: input.forge?.issue,
  };
}

/** The checkpoint to the run's branch; pushed, and a pull request opened, as the spec's `deliver` asks. */
export function deliverInput({ spec, state }: RunContext): DeliverInput {
  const { pr } = spec.deliver;
  return {
    runId: state.id,
    repo: spec.repo,
    branch: spec.branch,
    checkpoint: state.checkpoint!,
    push: spec.deliver.push,
    ...(pr
      ? {
          pr: {
            repo: pr.repo,
            base: pr.base ?? state.base!,
            draft: pr.draft,
            title: spec.title,
            body: pullRequestBody(state),
          },
        }
      : {}),
  };
}

/** What the webhooks are told of `event`: the run's status now, and where and why it failed if it did. */
export function runNotice({ state }: Pick<RunContext, 'state'>, event: RunEvent): RunNotice {
  return {
    event,
    runId: state.id,
    title: state.title,
    status: state.status,
    stage: state.failure?.stage ?? state.stage,
    reason: state.failure?.reason,
    at: nowIso(),
  };
}

/**
 * A plan's integration runs no agent in its first iteration when the tasks merged cleanly: the checks and the review
 * judge the merge itself; an agent comes in only for what they find, or a human asks (docs/plans.md).
 */
function integrationJudgedFirst({ input, state }: RunContext): boolean {
  return input.plan?.task === INTEGRATION_TASK && state.iteration === 1 && !input.plan.conflicts.length;
}
