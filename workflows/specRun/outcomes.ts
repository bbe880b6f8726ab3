// Each stage's outcome as the run's stage records show it: passed or not, and what happened in one line. Pure.
import type { AgentOutput } from '../../contracts/agent';
import type { Rebase } from '../../contracts/rebase';
import type { CheckResult, Decision, ReviewResult } from '../../contracts/run';
import { humanDuration } from './time';

/** Whether a stage passed, and what happened in one line. */
export type Outcome = [boolean, string];

export function agentOutcome({ result: r }: AgentOutput): Outcome {
  // `notFound`: absent in runs recorded before it, whose summaries replay unchanged.
  return [
    r.exitCode === 0,
    `exit ${r.exitCode ?? 'killed'}${r.timedOut ? ' (timed out)' : ''}${r.notFound ? ` (${r.notFound})` : ''}, ${r.changedFiles.length} file(s) changed`,
  ];
}

export function scopeOutcome({ violations }: { violations: string[] }): Outcome {
  return [
    violations.length === 0,
    violations.length ? `out of scope: ${violations.join(', ')}` : 'all changes in scope',
  ];
}

export function checksOutcome(checks: CheckResult[]): Outcome {
  // `unverified`: passed by its exit code alone (absent in runs recorded before it, whose summaries replay unchanged).
  return [
    checks.every((c) => c.passed),
    checks
      .map(
        (c) =>
          `${c.name} ${c.passed ? (c.unverified ? 'passed, UNVERIFIED' : 'passed') : `failed${c.notFound ? ` (${c.notFound})` : ''}`}`,
      )
      .join(', '),
  ];
}

export function reviewOutcome(r: ReviewResult): Outcome {
  return [
    r.verdict === 'approve',
    r.findings.length
      ? r.findings.map((f) => f.message).join('; ')
      : `approved (${r.diffLines} diff lines)${r.notes?.length ? `, NOT VERIFIED: ${r.notes.join('; ')}` : ''}`,
  ];
}

/** A human's decision, or none within the spec's approval timeout. */
export function approvalOutcome(d: Decision | undefined, timeoutMs: number): Outcome {
  return [
    d?.kind === 'approve',
    d ? `${d.kind} by ${d.by}${d.comment ? `: ${d.comment}` : ''}` : `no decision within ${humanDuration(timeoutMs)}`,
  ];
}

/** The rebase of the run's branch from the base commit `from` onto the current tip of `base`. */
export function rebaseOutcome(r: Rebase, base: string, from: string): Outcome {
  if (!r.moved) return [true, `${base} has not moved from ${from.slice(0, 12)}`];
  if (r.conflicts.length)
    return [false, `${base} moved to ${r.baseCommit.slice(0, 12)}; conflicts in ${r.conflicts.join(', ')}`];
  return [true, `rebased onto ${base} at ${r.baseCommit.slice(0, 12)}`];
}
