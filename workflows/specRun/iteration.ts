// One agent iteration and the stages that judge its change: agent → scope → checks → review.
import { patched } from '@temporalio/workflow';
import type { AgentOutput } from '../../contracts/agent';
import { BUDGET_ASK } from '../patches';
import { asksForBudget } from './budget';
import { integrityFindings, runChecks } from './checks';
import type { RunContext } from './context';
import { agentExitProblem, scopeProblem, type Problem } from './feedback';
import { agentInput } from './inputs';
import { agentOutcome, scopeOutcome } from './outcomes';
import { anyWorker } from './proxies';
import { review } from './review';
import { fail, stage } from './stages';
import { MINUTE, humanDuration } from './time';
import { inWorkspace } from './workspace';

/**
 * Run the agent with `feedback`, then judge its change; returns what is wrong with it (nothing: it may be delivered).
 */
export async function iteration(ctx: RunContext, feedback: string | undefined): Promise<Problem[]> {
  const agent = await runAgent(ctx, feedback);
  // Stopped by its spent budget, the work is unfinished: nothing to judge until a person raises it (pipeline.ts).
  if (agent.budgetExhausted) return [{ stage: 'budget', text: agent.budgetExhausted, until: agent.budgetUntil }];
  const problems: Problem[] = [];
  const { changedFiles } = agent.result;
  if (agent.result.exitCode !== 0) problems.push({ stage: 'agent', text: agentExitProblem(agent.result) });
  problems.push(...(await checkScope(ctx, changedFiles)));
  problems.push(...(await runChecks(ctx)));
  // A harness change is reviewed (and so reaches the agent and the run's state) even when the checks, run on the
  // base's harness, failed: otherwise the agent would hear only of a failing check it thought it had passed. So
  // are the checks' own findings against the base, for the review, the web page and the proof to show.
  if (problems.length === 0 || agent.result.harnessFindings?.length || integrityFindings(ctx.state.checks).length) {
    problems.push(...(await review(ctx, agent.diffId, changedFiles)));
  }
  return problems;
}

/**
 * The agent stage; the run fails when the agent timed out, or when the model budget is spent and the spec does not
 * ask for more (`limits.onExceed: fail`).
 */
async function runAgent(ctx: RunContext, feedback: string | undefined): Promise<AgentOutput> {
  const { state, sandboxMs } = ctx;
  const agent = await stage(
    ctx,
    'agent',
    'agent',
    () =>
      inWorkspace(ctx, sandboxMs + 5 * MINUTE, `agent, iteration ${state.iteration}`, (a) =>
        a.runAgent(agentInput(ctx, feedback)),
      ),
    agentOutcome,
  );
  state.agent = agent.result;
  state.diffId = agent.diffId;
  state.checkpoint = agent.checkpoint;
  if (agent.modelUsage) state.modelUsage = agent.modelUsage;
  // Another iteration would be refused by the gateway at once, unless a person raises the budget.
  if (agent.budgetExhausted && !(asksForBudget(ctx) && patched(BUDGET_ASK))) fail(ctx, 'agent', agent.budgetExhausted);
  // A hung agent would hang again: a timeout ends the run rather than spend another iteration's time limit.
  if (agent.result.timedOut) fail(ctx, 'agent', `agent timed out after ${humanDuration(sandboxMs)}`);
  return agent;
}

/** The scope stage: files the change may not touch, as a problem for the agent. */
async function checkScope(ctx: RunContext, changedFiles: string[]): Promise<Problem[]> {
  const { spec, state } = ctx;
  const scope = await stage(
    ctx,
    'scope',
    'checking',
    () => anyWorker.checkScope({ changedFiles, scope: spec.scope }),
    scopeOutcome,
  );
  state.scopeViolations = scope.violations;
  return scope.violations.length ? [{ stage: 'scope', text: scopeProblem(spec.scope, scope.violations) }] : [];
}
