import type { RunState } from '../workflows/types';

export function duration(ms?: number): string {
  if (ms === undefined) return '…';
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** A fixed-width table (columns sized to their widest cell). */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

/** `nightshift status`: what a person wants to know about a run, in a few lines. */
export function formatRun(run: RunState): string {
  const lines = [
    `${run.id}  ${run.title}`,
    `status     ${run.status}${run.stage ? ` (stage ${run.stage}, iteration ${run.iteration}/${run.maxIterations})` : ''}`,
    `repo       ${run.repo}  ${run.base ?? ''} → ${run.branch}`,
  ];
  if (run.failure) lines.push(`failure    ${run.failure.stage}: ${run.failure.reason.split('\n')[0]}`);
  lines.push('stages');
  for (const s of run.stages) lines.push(`  ${s.stage.padEnd(9)} #${s.iteration}  ${s.status.padEnd(7)} ${duration(s.durationMs).padStart(7)}  ${s.summary ?? ''}`);
  if (run.checks.length) {
    lines.push('checks');
    for (const c of run.checks) lines.push(`  ${c.passed ? 'pass' : 'FAIL'}  ${c.name}  (${c.command}, exit ${c.exitCode ?? 'killed'}, ${duration(c.durationMs)})`);
  }
  if (run.review) lines.push(`review     ${run.review.verdict}${run.review.findings.length ? `: ${run.review.findings.map((f) => f.message).join('; ')}` : ''}`);
  for (const d of run.decisions) lines.push(`decision   ${d.kind} by ${d.by} at ${d.at}${d.comment ? `: ${d.comment}` : ''}`);
  if (run.proofId) lines.push(`proof      sha256:${run.proofId}`);
  if (run.finalCommit) lines.push(`commit     ${run.finalCommit}`);
  return lines.join('\n');
}
