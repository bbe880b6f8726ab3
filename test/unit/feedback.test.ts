// What the agent is told between iterations (workflows/specRun/feedback.ts): exact texts, every branch.
import type { AgentResult, CheckResult, Decision } from '../../contracts/run';
import {
  agentExitProblem,
  checkProblem,
  iterationFeedback,
  rebaseConflictFeedback,
  rebasedChecksFeedback,
  requestedChangesFeedback,
  reviewProblem,
  scopeProblem,
  type Problem,
} from '../../workflows/specRun/feedback';

const agent = (over: Partial<AgentResult>): AgentResult => ({
  command: './fix.sh',
  exitCode: 1,
  timedOut: false,
  durationMs: 10,
  logId: 'l1',
  logTail: 'boom',
  changedFiles: [],
  ...over,
});
const check = (over: Partial<CheckResult>): CheckResult => ({
  name: 'unit',
  command: 'npm test',
  exitCode: 1,
  timedOut: false,
  durationMs: 10,
  logId: 'l2',
  logTail: '1 failing',
  passed: false,
  ...over,
});
const decision = (over: Partial<Decision>): Decision => ({
  kind: 'requestChanges',
  comment: 'Round half up.',
  by: 'alice',
  at: '2026-12-01T00:00:00.000Z',
  ...over,
});
const move = { base: 'main', from: '0123456789abcdef0123', to: 'fedcba9876543210fedc' };
const problems: Problem[] = [
  { stage: 'scope', text: 'first' },
  { stage: 'checks', text: 'second\nline' },
];

test('an agent that exited non-zero: its exit code, or the sandbox limit or timeout that ended it, and its log tail', () => {
  expect(agentExitProblem(agent({ exitCode: 2 }))).toBe('The agent exited with code 2. Its log ends with:\nboom');
  const notFound = 'go: not found in the sandbox; toolchains offered: none (sandbox.toolchains)';
  expect(agentExitProblem(agent({ exitCode: 127, notFound }))).toBe(
    `The agent exited with code 127 (${notFound}). Its log ends with:\nboom`,
  );
  expect(agentExitProblem(agent({ exitCode: null, timedOut: true }))).toBe(
    'The agent exited with a timeout. Its log ends with:\nboom',
  );
  expect(agentExitProblem(agent({ exitCode: 137, timedOut: true, limitHit: 'out of memory (limit 512 MiB)' }))).toBe(
    'The agent was stopped by a sandbox limit: out of memory (limit 512 MiB). Its log ends with:\nboom',
  );
});

test('files out of scope: the scope as the spec has it, and the files to revert', () => {
  expect(scopeProblem({ allow: ['src/**'], deny: ['src/secret.ts'] }, ['package.json', 'src/secret.ts'])).toBe(
    'These files may not be changed (scope allow ["src/**"], deny ["src/secret.ts"]); revert them: package.json, src/secret.ts',
  );
});

test('a failed check: how it failed and its log tail', () => {
  expect(checkProblem(check({}))).toBe(
    'Check "unit" (`npm test`) failed with exit code 1. Its log ends with:\n1 failing',
  );
  expect(checkProblem(check({ exitCode: null, timedOut: true }))).toBe(
    'Check "unit" (`npm test`) failed with a timeout. Its log ends with:\n1 failing',
  );
  expect(checkProblem(check({ limitHit: 'too many processes (limit 256)' }))).toBe(
    'Check "unit" (`npm test`) failed with a sandbox limit: too many processes (limit 256). Its log ends with:\n1 failing',
  );
});

test("a check that exited 0 but failed its integrity findings points to the review's findings instead of its log", () => {
  const integrity = { findings: [{ rule: 'tests-missing', message: '3 tests no longer run' }] };
  expect(checkProblem(check({ exitCode: 0, integrity }))).toBe(
    'Check "unit" (`npm test`) exited 0, but does not count as passed: see the review\'s findings on it.',
  );
  // Failing for itself, it is told as any failed check.
  expect(checkProblem(check({ exitCode: 1, integrity }))).toBe(
    'Check "unit" (`npm test`) failed with exit code 1. Its log ends with:\n1 failing',
  );
});

test('a failed hold-out check: its counts at most, never its log', () => {
  const hidden =
    'Its tests are hidden from you: make the change right for every input, not only for the tests you can see.';
  expect(checkProblem(check({ holdout: { set: 'square', tests: { passed: 3, failed: 2 } } }))).toBe(
    `Hold-out check "unit" (\`npm test\`) failed with exit code 1; 2 of its 5 tests failed. ${hidden}`,
  );
  expect(checkProblem(check({ timedOut: true, holdout: { set: 'square' } }))).toBe(
    `Hold-out check "unit" (\`npm test\`) failed with a timeout. ${hidden}`,
  );
  expect(checkProblem(check({ holdout: { set: 'square', problem: 'the set "square" is missing on worker w1' } }))).toBe(
    'Hold-out check "unit" could not run: the set "square" is missing on worker w1.',
  );
  expect(checkProblem(check({ holdout: { set: 'square', tests: { passed: 3, failed: 2 } } }))).not.toContain(
    '1 failing',
  );
});

test('a review finding: its rule and message', () => {
  expect(
    reviewProblem({
      rule: 'secret-added',
      message: 'src/config.ts:3 adds the value of STRIPE_KEY',
      file: 'src/config.ts',
      line: 3,
    }),
  ).toBe('Review (secret-added): src/config.ts:3 adds the value of STRIPE_KEY');
});

test("an iteration's problems, one bullet each, for the next iteration", () => {
  expect(iterationFeedback(2, problems)).toBe(
    'The pipeline found problems in iteration 2. Fix them:\n\n- first\n\n- second\nline',
  );
});

test("a human's request for changes: who asked, when known, and the comment as it came", () => {
  expect(requestedChangesFeedback(decision({}))).toBe('A reviewer requested changes (alice):\n\nRound half up.');
  expect(requestedChangesFeedback(decision({ by: '' }))).toBe('A reviewer requested changes:\n\nRound half up.');
});

test('a rebase that conflicts: where the base moved, the files, and how to resolve them', () => {
  expect(rebaseConflictFeedback(move, ['src/a.ts', 'src/b.ts'])).toBe(
    'The base branch main moved from 0123456789ab to fedcba9876543210fedc while this run was under way (other work landed on it). ' +
      "Your changes conflict with it in: src/a.ts, src/b.ts. The workspace now holds your changes on the new base, with git's conflict markers " +
      "(<<<<<<< … ======= … >>>>>>>) in those files: resolve them so that both the base's changes and yours are kept, and remove the markers.",
  );
});

test('a clean rebase whose checks fail on the new base: where the base moved, and the problems', () => {
  expect(rebasedChecksFeedback(move, problems)).toBe(
    'The base branch main moved from 0123456789ab to fedcba9876543210fedc while this run was under way (other work landed on it). ' +
      'Your changes were rebased onto it without conflicts, but on the new base:\n\n- first\n\n- second\nline',
  );
});
