import type { RunState } from '../contracts/run';

/**
 * The pull request's body: what the pipeline verified and who approved, from the run's state, and how to check the
 * signed proof. Pure, so the workflow can build it.
 */
export function pullRequestBody(state: RunState, forReview = false): string {
  if (forReview) return reviewRequestBody(state);
  const approval = state.decisions.at(-1);
  const lines = [
    `Opened by Nightshift run \`${state.id}\` after ${state.iteration} agent iteration(s), every check green and a human's approval.`,
    '',
    ...verified(state),
    `**Approved by**: ${approval ? `${approval.by} at ${approval.at}${approval.comment ? ` — ${approval.comment}` : ''}` : 'no approval required'}`,
    `**Proof**: \`proof.tar.gz\` (${state.proofId ? `sha256:${state.proofId}` : 'none'}), signed by the Nightshift server. Check it with \`nightshift proof ${state.id} -o . && nightshift verify ${state.id}-proof.tar.gz\`.`,
  ];
  return lines.join('\n');
}

/**
 * A pull request opened for review on the forge, before any approval: what the pipeline verified so far, and how the
 * forge drives the run from here.
 */
function reviewRequestBody(state: RunState): string {
  return [
    `Opened by Nightshift run \`${state.id}\` after ${state.iteration} agent iteration(s) with every check green; it waits for a review here.`,
    '',
    ...verified(state),
    '**Next**: approve this pull request to deliver it (with a signed proof), request changes (or comment `/nightshift fix …`) to send the agent back to work. A failing CI status on the pushed commit goes back to the agent too.',
  ].join('\n');
}

/** The checks table and the review's verdict. */
function verified(state: RunState): string[] {
  const checks = state.checks.map(
    (c) =>
      `| ${c.name} | ${c.passed ? 'passed' : 'failed'}${c.junit ? ` (${c.junit.tests} tests, ${c.junit.failures + c.junit.errors} failing)` : ''} | \`${c.command.replace(/[|`]/g, ' ')}\` |`,
  );
  return [
    '| check | result | command |',
    '|---|---|---|',
    ...(checks.length ? checks : ['| (none) | | |']),
    '',
    `**Review**: ${state.review ? `${state.review.verdict}, ${state.review.findings.length} finding(s), ${state.review.diffLines} diff lines` : 'none'}`,
  ];
}
