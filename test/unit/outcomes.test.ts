// Each stage's one-line outcome in the run's stage records (workflows/specRun/outcomes.ts).
import type { AgentOutput } from '../../contracts/agent';
import type { CheckResult } from '../../contracts/run';
import {
  agentOutcome,
  approvalOutcome,
  checksOutcome,
  rebaseOutcome,
  reviewOutcome,
  scopeOutcome,
} from '../../workflows/specRun/outcomes';

const checkpoint = { commit: 'c0ffee', afterStage: 'agent' as const, iteration: 1 };
const agentRun = (exitCode: number | null, timedOut: boolean): AgentOutput => ({
  result: {
    command: './fix.sh',
    exitCode,
    timedOut,
    durationMs: 1,
    logId: 'l',
    logTail: '',
    changedFiles: ['a.ts', 'b.ts'],
  },
  diffId: 'd',
  checkpoint,
});
const check = (name: string, passed: boolean) => ({ name, passed }) as CheckResult;

test('agent, scope, checks and review: passed or not, and what happened', () => {
  expect(agentOutcome(agentRun(0, false))).toEqual([true, 'exit 0, 2 file(s) changed']);
  expect(agentOutcome(agentRun(null, true))).toEqual([false, 'exit killed (timed out), 2 file(s) changed']);
  const notFound = 'go: not found in the sandbox; toolchains offered: python (sandbox.toolchains)';
  const missing = agentRun(127, false);
  expect(agentOutcome({ ...missing, result: { ...missing.result, notFound } })).toEqual([
    false,
    `exit 127 (${notFound}), 2 file(s) changed`,
  ]);
  expect(scopeOutcome({ violations: [] })).toEqual([true, 'all changes in scope']);
  expect(scopeOutcome({ violations: ['x', 'y'] })).toEqual([false, 'out of scope: x, y']);
  expect(checksOutcome([check('unit', true), check('lint', false)])).toEqual([false, 'unit passed, lint failed']);
  expect(reviewOutcome({ verdict: 'approve', findings: [], diffLines: 12 })).toEqual([
    true,
    'approved (12 diff lines)',
  ]);
  expect(
    reviewOutcome({
      verdict: 'changes',
      findings: [
        { rule: 'r', message: 'm1' },
        { rule: 'r', message: 'm2' },
      ],
      diffLines: 12,
    }),
  ).toEqual([false, 'm1; m2']);
});

test('approval: the decision and who made it, or the timeout as the spec wrote it', () => {
  const at = '2026-12-01T00:00:00.000Z';
  expect(approvalOutcome({ kind: 'approve', comment: '', by: 'alice', at }, 3_600_000)).toEqual([
    true,
    'approve by alice',
  ]);
  expect(approvalOutcome({ kind: 'reject', comment: 'no', by: 'bob', at }, 3_600_000)).toEqual([
    false,
    'reject by bob: no',
  ]);
  expect(approvalOutcome(undefined, 259_200_000)).toEqual([false, 'no decision within 3d']);
});

test('rebase: unmoved, rebased, or conflicting, with short commits', () => {
  const from = '0123456789abcdef';
  const moved = { moved: true as const, baseCommit: 'fedcba9876543210', checkpoint, diffId: 'd', changedFiles: [] };
  expect(rebaseOutcome({ moved: false }, 'main', from)).toEqual([true, 'main has not moved from 0123456789ab']);
  expect(rebaseOutcome({ ...moved, conflicts: [] }, 'main', from)).toEqual([true, 'rebased onto main at fedcba987654']);
  expect(rebaseOutcome({ ...moved, conflicts: ['a.ts', 'b.ts'] }, 'main', from)).toEqual([
    false,
    'main moved to fedcba987654; conflicts in a.ts, b.ts',
  ]);
});
