// What the agent is told when its change is not done yet: pure functions of the stages' results (unit-tested).
import type { Spec } from '../../spec/schema';
import type { AgentResult, CheckResult, Decision, ReviewFinding, StageName } from '../../contracts/run';

/** One thing a stage found wrong with the change, for the agent's next iteration (and the failure, if none is left). */
export interface Problem {
  stage: StageName;
  text: string;
  /** A budget problem from a limit above the run: when its window rolls over (epoch ms). */
  until?: number;
}

/** The agent's command did not exit 0. */
export function agentExitProblem(result: AgentResult): string {
  const how = result.limitHit
    ? `was stopped by a sandbox limit: ${result.limitHit}`
    : result.timedOut
      ? 'exited with a timeout'
      : `exited with code ${result.exitCode}${result.notFound ? ` (${result.notFound})` : ''}`;
  return `The agent ${how}. Its log ends with:\n${result.logTail}`;
}

export function scopeProblem(scope: Spec['scope'], violations: string[]): string {
  return `These files may not be changed (scope allow ${JSON.stringify(scope.allow)}, deny ${JSON.stringify(scope.deny)}); revert them: ${violations.join(', ')}`;
}

/** A check that did not pass. */
export function checkProblem(c: CheckResult): string {
  const how = c.limitHit
    ? `a sandbox limit: ${c.limitHit}`
    : c.timedOut
      ? 'a timeout'
      : `exit code ${c.exitCode}${c.notFound ? ` (${c.notFound})` : ''}`;
  if (c.holdout) return holdoutProblem(c, how);
  // Its findings against the base are the review's (below in the feedback): said once.
  if (c.integrity?.findings.length && c.exitCode === 0 && !c.timedOut)
    return `Check "${c.name}" (\`${c.command}\`) exited 0, but does not count as passed: see the review's findings on it.`;
  return `Check "${c.name}" (\`${c.command}\`) failed with ${how}. Its log ends with:\n${c.logTail}`;
}

/** A failed hold-out check: which one, and how many of its tests failed; never what they are. */
function holdoutProblem(c: CheckResult, how: string): string {
  const { problem, tests } = c.holdout!;
  if (problem) return `Hold-out check "${c.name}" could not run: ${problem}.`;
  const failed = tests ? `; ${tests.failed} of its ${tests.passed + tests.failed} tests failed` : '';
  return `Hold-out check "${c.name}" (\`${c.command}\`) failed with ${how}${failed}. Its tests are hidden from you: make the change right for every input, not only for the tests you can see.`;
}

export function reviewProblem(f: ReviewFinding): string {
  return `Review (${f.rule}): ${f.message}`;
}

/** The problems of an iteration, for the next. */
export function iterationFeedback(iteration: number, problems: Problem[]): string {
  return `The pipeline found problems in iteration ${iteration}. Fix them:\n\n${bullets(problems)}`;
}

/** A human's request for changes, sent back as it came. */
export function requestedChangesFeedback(decision: Decision): string {
  return `A reviewer requested changes${decision.by ? ` (${decision.by})` : ''}:\n\n${decision.comment}`;
}

/** The base branch moved while the run worked: where from, where to. */
export interface BaseMove {
  base: string;
  from: string;
  to: string;
}

/** The approved change, rebased onto the moved base, conflicts with it in `conflicts`. */
export function rebaseConflictFeedback(move: BaseMove, conflicts: string[]): string {
  return `${baseMoved(move)} Your changes conflict with it in: ${conflicts.join(', ')}. The workspace now holds your changes on the new base, with git's conflict markers (<<<<<<< … ======= … >>>>>>>) in those files: resolve them so that both the base's changes and yours are kept, and remove the markers.`;
}

/** The approved change rebased cleanly onto the moved base, but the checks found `problems` there. */
export function rebasedChecksFeedback(move: BaseMove, problems: Problem[]): string {
  return `${baseMoved(move)} Your changes were rebased onto it without conflicts, but on the new base:\n\n${bullets(problems)}`;
}

/** A plan's task whose needs' changes conflict: its base holds both, with markers, in `conflicts`. */
export function needsConflictFeedback(needs: string[], conflicts: string[]): string {
  return `This task's base merges what the tasks it builds on delivered (${needs.join(', ')}), and their changes conflict in: ${conflicts.join(', ')}. The workspace holds both, with git's conflict markers (<<<<<<< … ======= … >>>>>>>) in those files: resolve them so that both tasks' changes are kept, and remove the markers, as part of your task.`;
}

function baseMoved({ base, from, to }: BaseMove): string {
  return `The base branch ${base} moved from ${from.slice(0, 12)} to ${to} while this run was under way (other work landed on it).`;
}

function bullets(problems: Problem[]): string {
  return problems.map((p) => `- ${p.text}`).join('\n\n');
}
