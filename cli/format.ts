import type { CheckIntegrity, RunStateView } from '../contracts/run';
import { parseAmount } from '../spec/budget';
import type { PlanTaskState } from '../contracts/plan';
import { planWaves } from '../spec/plan';
import { CliError } from './client';

export function duration(ms?: number): string {
  if (ms === undefined || !Number.isFinite(ms)) return '…';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** "2026-01-02T03:04:05.678Z" → "2026-01-02 03:04:05" (as the server sent it: UTC). */
export function when(iso?: string): string {
  return iso ? iso.replace('T', ' ').slice(0, 19) : '';
}

const since = (start?: string, end?: string): number | undefined => {
  const a = start ? Date.parse(start) : NaN;
  const b = end ? Date.parse(end) : Date.now();
  return Number.isFinite(a) && Number.isFinite(b) ? b - a : undefined;
};

/** A fixed-width table (columns sized to their widest cell). */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

export interface RunSummary {
  id: string;
  title?: string;
  repo?: string;
  status: string;
  startedAt?: string;
  closedAt?: string;
}

/** `nightshift runs`: one line a run, newest first (as the API sends them). */
export function runsTable(runs: RunSummary[]): string {
  return table([
    ['ID', 'STATUS', 'STARTED', 'TOOK', 'TITLE'],
    ...runs.map((r) => [
      r.id,
      r.status,
      when(r.startedAt),
      r.closedAt ? duration(since(r.startedAt, r.closedAt)) : '',
      r.title ?? '',
    ]),
  ]);
}

export interface ScheduleSummary {
  id: string;
  cron: string;
  title?: string;
  paused?: boolean;
  nextRunAt?: string;
  recentRuns?: string[];
}

/** `nightshift schedule ls`. */
export function schedulesTable(schedules: ScheduleSummary[]): string {
  return table([
    ['ID', 'CRON', 'NEXT', 'LAST RUN', 'TITLE'],
    ...schedules.map((s) => [
      s.id,
      s.cron,
      s.paused ? 'paused' : when(s.nextRunAt),
      s.recentRuns?.at(-1) ?? '',
      s.title ?? '',
    ]),
  ]);
}

/** `nightshift fleet` without --json: a few lines, tolerant of fields the server adds or leaves out. */
export function formatFleet(fleet: Record<string, unknown>): string {
  const lines: string[] = [];
  const workers = Array.isArray(fleet.workers) ? (fleet.workers as Record<string, unknown>[]) : [];
  lines.push(
    `workers (${workers.length})${typeof fleet.taskQueue === 'string' ? ` on task queue ${fleet.taskQueue}` : ''}${workers.length ? ':' : ''}`,
  );
  for (const w of workers) {
    const parts = [String(w.identity ?? 'unknown')];
    if (typeof w.capacity === 'number')
      parts.push(`sandboxes ${w.load ?? 0}/${w.capacity}${w.waiting ? ` (+${w.waiting} waiting)` : ''}`);
    if (Array.isArray(w.drivers)) parts.push(`drivers ${w.drivers.join(', ')}`);
    if (Array.isArray(w.agents))
      parts.push(
        `agents ${(w.agents as { kind: string; version?: string }[]).map((a) => (a.version ? `${a.kind} ${a.version}` : a.kind)).join(', ')}`,
      );
    if (typeof w.memoryBytes === 'number') parts.push(`rss ${Math.round(w.memoryBytes / 2 ** 20)} MiB`);
    if (w.lastSeen) parts.push(`last seen ${when(String(w.lastSeen))}`);
    lines.push(`  ${parts.join('  ')}`);
  }
  if (fleet.runs && typeof fleet.runs === 'object') {
    const counts = Object.entries(fleet.runs as Record<string, unknown>).filter(
      ([, n]) => typeof n === 'number' && n > 0,
    );
    lines.push(`runs: ${counts.map(([s, n]) => `${s} ${n}`).join(', ') || 'none'}`);
  }
  const q = fleet.queueDepth as Record<string, unknown> | undefined;
  if (q && typeof q === 'object') {
    if ('workflowTasks' in q || 'activityTasks' in q)
      lines.push(
        `queue: ${q.claims ?? 0} runs waiting for a sandbox slot; ${q.workflowTasks ?? 0} workflow tasks, ${q.activityTasks ?? 0} activity tasks waiting`,
      );
    else
      lines.push(
        `queue: ${Object.entries(q)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
  } else if (typeof q === 'number') lines.push(`queue: ${q} waiting`);
  return lines.join('\n');
}

/**
 * A run's failure as `stage: reason`, the reason whole: what follows its first line (a check's or the agent's log
 * tail) is indented by `indent`, so it reads as part of the failure.
 */
export function failureText(failure: NonNullable<RunStateView['failure']>, indent: string): string {
  const [first, ...rest] = (failure.reason ?? '').trimEnd().split('\n');
  return [`${failure.stage}: ${first}`, ...rest.map((line) => `${indent}${line}`.trimEnd())].join('\n');
}

/**
 * What judged a check beside its exit code: its tests now and at the base, and its canary (docs/checks.md), as
 * `tests 3 ran, 0 skipped (base 3 ran, 0 skipped; go test -json, by name); canary reported failing`.
 */
function integrityText(integrity: CheckIntegrity | undefined): string {
  const parts: string[] = [];
  const tests = integrity?.tests;
  if (tests) {
    const how = tests.source === 'names' ? `${tests.format ?? 'names'}, by name` : (tests.format ?? tests.source);
    parts.push(
      `tests ${tests.now.ran} ran, ${tests.now.skipped} skipped (base ${tests.base.ran} ran, ${tests.base.skipped} skipped; ${how})`,
    );
  }
  const canary = integrity?.canary;
  if (canary) parts.push('off' in canary ? `canary off: ${canary.off}` : `canary ${CANARY_WORDS[canary.result]}`);
  return parts.length ? `\n        ${parts.join('; ')}` : '';
}

const CANARY_WORDS = {
  reported: 'reported failing',
  passed: 'PASSED (the harness lies)',
  changed: 'CHANGED the other tests',
} as const;

/** `nightshift status`: what a person wants to know about a run, in a few lines. */
/**
 * A plan's tasks as a tree: each indented by how deep in the graph it is (its wave), with its state, how long it took
 * (or has been running), its run, what it needs and why it failed or was skipped.
 */
function taskTree(tasks: PlanTaskState[]): string[] {
  const depth = new Map(planWaves(tasks).flatMap((wave, i) => wave.map((id) => [id, i] as const)));
  const width = Math.max(...tasks.map((t) => 2 * depth.get(t.id)! + t.id.length));
  return tasks.map((t) => {
    const took = t.startedAt ? duration(since(t.startedAt, t.endedAt)) : '';
    const name = `${'  '.repeat(depth.get(t.id)!)}${t.id}`.padEnd(width);
    const needs = t.needs.length ? `  (needs ${t.needs.join(', ')})` : '';
    const now = t.state === 'running' && t.status ? ` [${t.status}]` : '';
    return `  ${name}  ${t.state.padEnd(7)} ${took.padStart(7)}  ${t.runId}${now}${needs}${t.reason ? `: ${t.reason}` : ''}`;
  });
}

export function formatRun(run: RunStateView): string {
  const stages = run.stages ?? [];
  const checks = run.checks ?? [];
  const decisions = run.decisions ?? [];
  const lines = [
    `${run.id}  ${run.title ?? ''}`,
    `status     ${run.status}${run.stage ? ` (stage ${run.stage}, iteration ${run.iteration}/${run.maxIterations})` : ''}`,
    `repo       ${run.repo ?? ''}  ${run.base ?? ''} → ${run.branch ?? ''}`,
  ];
  if (run.failure) lines.push(`failure    ${failureText(run.failure, ' '.repeat(13))}`);
  // The integration is the graph's last node: it needs every task.
  if (run.tasks?.length)
    lines.push(
      run.proposal
        ? `tasks      ${run.proposal.by === 'agent' ? 'proposed by the agent' : `corrected by ${run.proposal.by}`}`
        : 'tasks',
      ...taskTree([...run.tasks, ...(run.integration ? [run.integration] : [])]),
    );
  if (stages.length) {
    lines.push('stages');
    for (const s of stages) {
      const took = s.durationMs ?? (s.status === 'running' ? since(s.startedAt) : since(s.startedAt, s.endedAt));
      lines.push(
        `  ${s.stage.padEnd(9)} #${s.iteration}  ${s.status.padEnd(7)} ${duration(took).padStart(7)}  ${s.summary ?? ''}`.trimEnd(),
      );
    }
  }
  if (checks.length) {
    lines.push('checks');
    for (const c of checks)
      lines.push(
        `  ${c.passed ? (c.unverified ? 'pass UNVERIFIED' : 'pass') : 'FAIL'}  ${c.name}  (${c.command}, ${c.timedOut ? 'timed out' : `exit ${c.exitCode ?? 'killed'}`}, ${duration(c.durationMs)})${c.notFound ? `: ${c.notFound}` : ''}${c.unverified ? `\n        unverified: ${c.unverified}` : ''}${integrityText(c.integrity)}`,
      );
  }
  if (run.scopeViolations?.length)
    lines.push(`scope      outside the allowed paths: ${run.scopeViolations.join(', ')}`);
  if (run.review)
    lines.push(
      `review     ${run.review.verdict}${run.review.notes?.length ? `, NOT VERIFIED (${run.review.notes.length})` : ''}${run.review.findings?.length ? `: ${run.review.findings.map((f) => f.message).join('; ')}` : ''}`,
      ...(run.review.notes ?? []).map((n) => `           not verified: ${n}`),
    );
  for (const d of decisions)
    lines.push(
      `decision   ${d.kind} by ${d.by}${d.verified ? (d.channel === 'forge' ? ' (via forge)' : '') : ' (unverified, via Temporal)'} at ${when(d.at)}${d.comment ? `: ${d.comment}` : ''}`,
    );
  if (run.proofId) lines.push(`proof      sha256:${run.proofId}`);
  if (run.finalCommit) lines.push(`commit     ${run.finalCommit}`);
  if (run.status === 'awaiting_plan_approval')
    lines.push(
      ...run.proposal!.tasks.map((t) => `  ${t.id}: ${t.task.split('\n')[0]}`),
      `next       nightshift approve|reject ${run.id} [-m …]; nightshift tasks ${run.id} corrected.json`,
    );
  if (run.status === 'awaiting_approval')
    lines.push(
      `next       nightshift diff ${run.id}; nightshift approve|reject ${run.id} [-m …]; nightshift changes ${run.id} -m …`,
    );
  if (run.status === 'awaiting_budget' && run.budget)
    lines.push(
      `budget     spent: ${run.budget.stoppedBy}`,
      run.budget.until
        ? `next       goes on by itself at ${run.budget.until}, or when an admin changes the limit; nightshift reject ${run.id}`
        : `next       nightshift budget ${run.id} +5usd|+100000tokens [-m …]; nightshift reject ${run.id}`,
    );
  return lines.join('\n');
}

/** `nightshift budget`'s amounts (`+5usd`, `+$5`, `+100000tokens`, `+100ktokens`) as the API's body; a usage error. */
export function budgetAmounts(amounts: string[]): { costUsd?: number; tokens?: number } {
  const body: { costUsd?: number; tokens?: number } = {};
  for (const text of amounts) {
    const amount = parseAmount(text);
    if (!amount) throw new CliError(`budget: "${text}" is not an amount: +5usd, +$5, +100000tokens or +100ktokens`, 2);
    const field = amount.unit === 'usd' ? 'costUsd' : 'tokens';
    body[field] = (body[field] ?? 0) + amount.amount;
  }
  return body;
}
