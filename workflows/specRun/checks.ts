// The spec's checks on the checkpoint, in the workspace.
import type { CheckResult } from '../../contracts/run';
import type { RunContext } from './context';
import { checkProblem, type Problem } from './feedback';
import { checksInput } from './inputs';
import { checksOutcome } from './outcomes';
import { stage } from './stages';
import { MINUTE } from './time';
import { inWorkspace } from './workspace';

/** The spec's checks on the checkpoint; their failures as problems for the agent. */
export async function runChecks(ctx: RunContext): Promise<Problem[]> {
  const { spec, state, sandboxMs } = ctx;
  if (!spec.checks.length) return [];
  const checks = await stage(
    ctx,
    'checks',
    'checking',
    // Each check may run three times: itself, at the base once per base (cached), and with a canary.
    () =>
      inWorkspace(ctx, 3 * spec.checks.length * sandboxMs + 5 * MINUTE, `checks, iteration ${state.iteration}`, (a) =>
        a.runChecks(checksInput(ctx)),
      ),
    checksOutcome,
  );
  state.checks = checks;
  return checks.filter((c) => !c.passed).map((c) => ({ stage: 'checks', text: checkProblem(c) }));
}

/** The checks' findings against the base: tests that no longer run, a harness that reported a canary passing. */
export function integrityFindings(checks: CheckResult[]) {
  return checks.flatMap((c) => c.integrity?.findings ?? []);
}

/**
 * Checks whose green cannot be verified, said in the review: a hold-out check whose set carries no canary, a passing
 * check whose runner printed no test counts (`unverified`, absent in runs recorded before it, so their review replays
 * as it ran).
 */
export function unverifiedNotes(checks: CheckResult[]): string[] {
  return checks.flatMap((c) =>
    c.holdout && c.integrity?.canary && 'off' in c.integrity.canary
      ? [
          `Hold-out check "${c.name}" is ${c.integrity.canary.off}: its result is only its exit code and test counts, which the code under test can fake`,
        ]
      : c.passed && c.unverified
        ? [`Check "${c.name}" is unverified: ${c.unverified}`]
        : [],
  );
}
