import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { gitIn, makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// The agent's own .git, on both drivers: the run's whole history, usable for everything an agent does with git
// (log, show, status, diff, commit), while the run's objects it borrows stay read-only to it.

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

const AGENT = [
  'git log --format=%s > notes/log.txt',
  'git show HEAD~2:src/value.txt > notes/old-value.txt',
  'git status --porcelain -- src README.md > notes/status-before.txt',
  'echo 2 > src/value.txt',
  'git diff --stat > notes/diff.txt',
  'git -c user.name=a -c user.email=a@b commit --quiet -am "the agent\'s own commit" && git log -1 --format=%s > notes/own-commit.txt',
  // The borrowed objects are read-only: a write there fails, and says so.
  '(touch /run/nightshift-git/objects/planted && echo wrote || echo refused) > notes/write-objects.txt',
].join('; ');

describe.each(['bwrap', 'docker'])('%s: the agent has a git of its own', (driver) => {
  test("with the whole history, its commits its own, the run's objects read-only", async () => {
    const repo = makeRepo(VALUE_REPO);
    for (const n of [1, 2]) {
      gitIn(repo, 'commit', '--quiet', '--allow-empty', '-m', `history ${n}`);
    }
    const id = await stack.submit(spec(repo, AGENT, { sandbox: { driver }, approval: { required: false } }));
    const state = await stack.waitFor(id, ['succeeded', 'failed'], 180_000);
    expect(state.failure).toBeUndefined();
    const file = (name: string) => gitIn(repo, 'show', `${state.branch}:notes/${name}`).trimEnd();
    expect(file('log.txt').split('\n')).toEqual(['history 2', 'history 1', expect.any(String)]);
    expect(file('old-value.txt')).toBe('1');
    expect(file('status-before.txt')).toBe('');
    expect(file('diff.txt')).toContain('src/value.txt');
    expect(file('own-commit.txt')).toBe("the agent's own commit");
    expect(file('write-objects.txt')).toBe('refused');
    // Nothing was planted in the worker's objects; the delivered commit is the worker's, not the agent's.
    const work = path.join(stack.config.home, 'work');
    const planted = readdirSync(work, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('planted'));
    expect(planted).toEqual([]);
    expect(existsSync(path.join(repo, '.git', 'objects', 'planted'))).toBe(false);
    expect(gitIn(repo, 'log', '-1', '--format=%s', state.branch)).toContain('Set the value to two');
  }, 240_000);
});
