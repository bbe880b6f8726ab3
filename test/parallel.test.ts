import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { unpackTarGz } from '../proof/tar';
import { openArtifactStore } from '../store/openArtifacts';
import type { RunState } from '../contracts/run';
import { gitIn, makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// Parallel runs on one repo: each run is rebased onto its base's current tip after approval, so it lands on top of
// whatever another run (merged by a human meanwhile) put there; a conflict goes back to the agent.

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function approve(id: string): Promise<void> {
  const res = await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'ok' } });
  expect(res.status).toBe(202);
}

const isAncestor = (repo: string, a: string, b: string) => {
  try {
    execFileSync('git', ['merge-base', '--is-ancestor', a, b], { cwd: repo, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** Subjects of the commits on `branch` above `base`, oldest first. */
const commitsAbove = (repo: string, base: string, branch: string) =>
  gitIn(repo, 'log', '--reverse', '--format=%s', `${base}..${branch}`).trim().split('\n').filter(Boolean);

const stageList = (s: RunState) => s.stages.map((x) => `${x.stage}:${x.status}`);

/** The diff the run reports (API, proof) is exactly the delivered branch against the base it was rebased onto. */
async function expectDiffIsDelivered(repo: string, run: RunState): Promise<void> {
  const delivered = gitIn(repo, 'diff', '--binary', run.baseCommit!, run.finalCommit!);
  expect((await stack.api('GET', `/v1/runs/${run.id}/diff`)).text).toBe(delivered);
  const proof = await unpackTarGz(await openArtifactStore(stack.config).get(run.proofId!));
  expect(proof.get('diff.patch')!.toString()).toBe(delivered);
  expect(JSON.parse(proof.get('manifest.json')!.toString())).toMatchObject({
    baseCommit: run.baseCommit,
    finalCommit: run.finalCommit,
  });
}

test('two runs change the same line: A is delivered and merged, B’s rebase conflicts, its agent resolves it, B lands on top of A', async () => {
  const repo = makeRepo(VALUE_REPO);
  const idA = await stack.submit(spec(repo, 'echo 2 > src/value.txt', { title: 'Set the value to two' }));
  // B keeps the feedback it got and the file as it found it (prefixed, so no marker is committed), then on a
  // conflict writes a line that keeps A's change and its own.
  const agentB = [
    'printf "%s" "$NIGHTSHIFT_FEEDBACK" > notes/feedback-$NIGHTSHIFT_ITERATION.txt',
    'sed "s/^/| /" src/value.txt > notes/found-$NIGHTSHIFT_ITERATION.txt',
    'case "$NIGHTSHIFT_FEEDBACK" in *conflict*) echo "2 and 3" > src/value.txt ;; *) echo 3 > src/value.txt ;; esac',
  ].join('; ');
  const idB = await stack.submit(
    spec(repo, agentB, {
      title: 'Set the value to three',
      checks: [{ name: 'three', run: 'grep -qw 3 src/value.txt' }],
    }),
  );
  const [waitingA, waitingB] = await Promise.all([
    stack.waitFor(idA, ['awaiting_approval']),
    stack.waitFor(idB, ['awaiting_approval']),
  ]);
  const base0 = gitIn(repo, 'rev-parse', 'main').trim();
  expect(waitingA.baseCommit).toBe(base0);
  expect(waitingB.baseCommit).toBe(base0);

  await approve(idA);
  const a = await stack.waitFor(idA, ['succeeded']);
  expect(stageList(a).slice(-3)).toEqual(['rebase:passed', 'proof:passed', 'deliver:passed']);
  expect(a.stages.find((s) => s.stage === 'rebase')?.summary).toBe(`main has not moved from ${base0.slice(0, 12)}`);
  // What was approved, signed: on the same base, with the same change.
  expect(gitIn(repo, 'rev-parse', `${a.finalCommit}^`).trim()).toBe(base0);
  expect(a.diffId).toBe(waitingA.diffId);
  await expectDiffIsDelivered(repo, a);
  // A human merges A's branch, as after a review.
  gitIn(repo, 'merge', '--quiet', '--ff-only', a.branch);
  const base1 = gitIn(repo, 'rev-parse', 'main').trim();
  expect(base1).toBe(a.finalCommit);

  await approve(idB);
  const again = await stack.waitFor(idB, ['awaiting_approval', 'failed'], 120_000);
  expect(again.status).toBe('awaiting_approval');
  expect(again.iteration).toBe(2);
  expect(stageList(again).slice(5)).toEqual([
    'approval:passed',
    'rebase:failed',
    'agent:passed',
    'scope:passed',
    'checks:passed',
    'review:passed',
    'approval:running',
  ]);
  expect(again.stages.find((s) => s.stage === 'rebase')?.summary).toBe(
    `main moved to ${base1.slice(0, 12)}; conflicts in src/value.txt`,
  );
  expect(again.baseCommit).toBe(base1);

  await approve(idB);
  const b = await stack.waitFor(idB, ['succeeded']);
  expect(b.stages.filter((s) => s.stage === 'rebase').map((s) => s.summary)).toEqual([
    `main moved to ${base1.slice(0, 12)}; conflicts in src/value.txt`,
    `main has not moved from ${base1.slice(0, 12)}`,
  ]);

  // What B's agent got in iteration 2: the conflict, the file, the new base; and the file with git's markers.
  const feedback = gitIn(repo, 'show', `${b.branch}:notes/feedback-2.txt`);
  expect(feedback).toContain(`The base branch main moved from ${base0.slice(0, 12)} to ${base1}`);
  expect(feedback).toContain('Your changes conflict with it in: src/value.txt.');
  expect(gitIn(repo, 'show', `${b.branch}:notes/found-2.txt`)).toMatch(
    /^\| <<<<<<< .*\n\| 2\n\| =======\n\| 3\n\| >>>>>>> .*\n$/,
  );
  expect(gitIn(repo, 'show', `${b.branch}:notes/feedback-1.txt`)).toBe('');

  // B stands on A: A's commit is in its history, B applies on main as a fast-forward, and keeps both changes.
  expect(isAncestor(repo, a.finalCommit!, b.finalCommit!)).toBe(true);
  expect(isAncestor(repo, 'main', b.branch)).toBe(true);
  expect(gitIn(repo, 'show', `${b.branch}:src/value.txt`)).toBe('2 and 3\n');
  // Each agent commit once: A's one commit below, B's iterations as one commit above (no commit with markers).
  expect(commitsAbove(repo, base0, a.branch)).toEqual(['Set the value to two (iteration 1)']);
  expect(commitsAbove(repo, 'main', b.branch)).toEqual(['Set the value to three (iteration 2)']);
  expect(gitIn(repo, 'log', '-p', `main..${b.branch}`)).not.toMatch(/^\+(<{7}|>{7})/m);
  await expectDiffIsDelivered(repo, b);

  gitIn(repo, 'merge', '--quiet', '--ff-only', b.branch);
  expect(gitIn(repo, 'show', 'main:src/value.txt')).toBe('2 and 3\n');
});

test('the base moved without a conflict: the run is rebased, checked again and delivered on the new base, with no other agent iteration', async () => {
  const repo = makeRepo(VALUE_REPO);
  const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt'));
  const waiting = await stack.waitFor(id, ['awaiting_approval']);
  // Someone else's work lands on main while the run awaits approval.
  writeFileSync(path.join(repo, 'README.md'), 'A tiny repo, now documented better.\n');
  gitIn(repo, 'commit', '--quiet', '-am', 'docs', '--author', 'Other <other@localhost>');
  const moved = gitIn(repo, 'rev-parse', 'main').trim();

  await approve(id);
  const done = await stack.waitFor(id, ['succeeded']);
  expect(done.iteration).toBe(1);
  expect(stageList(done).slice(5)).toEqual([
    'approval:passed',
    'rebase:passed',
    'checks:passed',
    'proof:passed',
    'deliver:passed',
  ]);
  expect(done.stages.find((s) => s.stage === 'rebase')?.summary).toBe(`rebased onto main at ${moved.slice(0, 12)}`);
  expect(done.baseCommit).toBe(moved);
  expect(done.finalCommit).not.toBe(waiting.checkpoint!.commit);

  expect(gitIn(repo, 'rev-parse', done.branch).trim()).toBe(done.finalCommit);
  expect(gitIn(repo, 'rev-parse', `${done.branch}^`).trim()).toBe(moved);
  expect(commitsAbove(repo, 'main', done.branch)).toEqual(['Set the value to two (iteration 1)']);
  expect(gitIn(repo, 'log', '-1', '--format=%B', done.branch)).toContain(`Nightshift-Run: ${id}`);
  expect(gitIn(repo, 'show', `${done.branch}:README.md`)).toBe('A tiny repo, now documented better.\n');
  expect(gitIn(repo, 'show', `${done.branch}:src/value.txt`)).toBe('2\n');
  await expectDiffIsDelivered(repo, done);
  // The rebased commit is what was signed and delivered.
  expect((await stack.api('GET', `/v1/runs/${id}/logs`)).text).toMatch(
    new RegExp(
      `=== rebase: main moved from ${waiting.baseCommit!.slice(0, 12)} to ${moved.slice(0, 12)}; rebased cleanly to ([0-9a-f]{12}) ===[^]*=== sign: 1 commit signed with sha256:[0-9a-f]{64}, \\1 is now ${done.finalCommit!.slice(0, 12)} ===`,
    ),
  );
});

test('a clean rebase whose result fails a check goes back to the agent, naming the new base and the check', async () => {
  const repo = makeRepo(VALUE_REPO);
  // The check wants the value the repo asks for (2 until main says otherwise); the agent writes what it finds asked.
  const id = await stack.submit(
    spec(
      repo,
      'printf "%s" "$NIGHTSHIFT_FEEDBACK" > notes/feedback-$NIGHTSHIFT_ITERATION.txt; cat src/want.txt 2>/dev/null > src/value.txt || echo 2 > src/value.txt',
      {
        checks: [{ name: 'wanted', run: 'test "$(cat src/value.txt)" = "$(cat src/want.txt 2>/dev/null || echo 2)"' }],
      },
    ),
  );
  const waiting = await stack.waitFor(id, ['awaiting_approval']);
  writeFileSync(path.join(repo, 'src/want.txt'), '5\n');
  gitIn(repo, 'add', 'src/want.txt');
  gitIn(repo, '-c', 'user.name=Other', '-c', 'user.email=other@localhost', 'commit', '--quiet', '-m', 'want 5');
  const moved = gitIn(repo, 'rev-parse', 'main').trim();

  await approve(id);
  const again = await stack.waitFor(id, ['awaiting_approval', 'failed'], 120_000);
  expect(again.status).toBe('awaiting_approval');
  expect(again.iteration).toBe(2);
  expect(stageList(again).slice(5)).toEqual([
    'approval:passed',
    'rebase:passed',
    'checks:failed',
    'agent:passed',
    'scope:passed',
    'checks:passed',
    'review:passed',
    'approval:running',
  ]);
  expect(again.feedback).toContain(`The base branch main moved from ${waiting.baseCommit!.slice(0, 12)} to ${moved}`);
  expect(again.feedback).toContain('Your changes were rebased onto it without conflicts, but on the new base:');
  expect(again.feedback).toContain('Check "wanted"');

  await approve(id);
  const done = await stack.waitFor(id, ['succeeded']);
  expect(gitIn(repo, 'show', `${done.branch}:src/value.txt`)).toBe('5\n');
  expect(gitIn(repo, 'show', `${done.branch}:notes/feedback-2.txt`)).toBe(again.feedback);
  expect(commitsAbove(repo, 'main', done.branch)).toEqual([
    'Set the value to two (iteration 1)',
    'Set the value to two (iteration 2)',
  ]);
  await expectDiffIsDelivered(repo, done);
});
