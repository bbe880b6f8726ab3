import type { ReviewFinding, ReviewResult } from '../../contracts/run';
import type { ActivityDeps } from '../../runtime/deps';
import { binaryFindings, runnerAwareFindings, type ChangeRuleOptions } from '../../judge/changeRules';
import { diffFindings } from '../../judge/diffRules';
import { countDiffLines } from '../../judge/scope';

/**
 * Rule-based review of the diff: size, no change, secrets or private keys added, tests deleted or weakened, code
 * that reads the test runner's environment, binaries and archives.
 */
export function reviewChanges(deps: ActivityDeps) {
  return async (
    input: { diffId: string; changedFiles: string[]; maxDiffLines: number } & ChangeRuleOptions,
  ): Promise<ReviewResult> => {
    const diff = (await deps.store.get(input.diffId)).toString('utf8');
    const diffLines = countDiffLines(diff);
    const findings: ReviewFinding[] = [];
    if (input.changedFiles.length === 0) {
      findings.push({ rule: 'no-change', message: 'the agent changed no file' });
    }
    if (diffLines > input.maxDiffLines) {
      findings.push({
        rule: 'diff-size',
        message: `the diff has ${diffLines} changed lines, more than review.maxDiffLines (${input.maxDiffLines}); make a smaller change`,
      });
    }
    findings.push(...diffFindings(diff), ...runnerAwareFindings(diff, input), ...binaryFindings(diff, input));
    return { verdict: findings.length ? 'changes' : 'approve', findings, diffLines };
  };
}
