import type { RunState } from './types';

/**
 * The pull request's body: what the pipeline verified and who approved, from the run's state, and how to check the
 * signed proof. Pure, so the workflow can build it.
 */
export function pullRequestBody(state: RunState): string {
  const approval = state.decisions.at(-1);
  const checks = state.checks.map((c) => `| ${c.name} | ${c.passed ? 'passed' : 'failed'}${c.junit ? ` (${c.junit.tests} tests, ${c.junit.failures + c.junit.errors} failing)` : ''} | \`${c.command.replace(/[|`]/g, ' ')}\` |`);
  const lines = [
    `Opened by Nightshift run \`${state.id}\` after ${state.iteration} agent iteration(s), every check green and a human's approval.`,
    '',
    '| check | result | command |',
    '|---|---|---|',
    ...(checks.length ? checks : ['| (none) | | |']),
    '',
    `**Review**: ${state.review ? `${state.review.verdict}, ${state.review.findings.length} finding(s), ${state.review.diffLines} diff lines` : 'none'}`,
    `**Approved by**: ${approval ? `${approval.by} at ${approval.at}${approval.comment ? ` — ${approval.comment}` : ''}` : 'no approval required'}`,
    `**Proof**: \`proof.tar.gz\` (${state.proofId ? `sha256:${state.proofId}` : 'none'}), signed by the Nightshift server. Check it with \`nightshift proof ${state.id} -o . && nightshift verify ${state.id}-proof.tar.gz\`.`,
  ];
  return lines.join('\n');
}
