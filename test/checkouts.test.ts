import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CheckoutCache } from '../git/checkouts';
import { RunRepo } from '../git/git';
import { mountsUnder, unmountUnder } from '../sandbox/overlay';
import { gitIn, makeRepo, tempDir } from './helpers/stack';

// Kept checkouts (git/checkouts.ts) with real git and overlays: a workspace lies over the checkout of its
// tree, or of a near one, and holds exactly its commit's files either way.

async function workspaceAt(root: string, source: string, cache: CheckoutCache, commit: string): Promise<RunRepo> {
  const repo = new RunRepo(root, path.join(root, 'workspace'));
  mkdirSync(repo.workTree, { recursive: true });
  await repo.cloneFrom(source);
  const atTree = await cache.layOver(repo, commit, path.join(root, 'layer'));
  await repo.layOut('work', commit, { fresh: true, checkedOut: atTree });
  return repo;
}

test('a near checkout serves with git writing the difference; one whose attributes differ does not, so each workspace is its commit', async () => {
  const dir = tempDir('checkouts');
  const source = makeRepo({ 'a.txt': 'one\ntwo\n', 'b.txt': 'unchanged\n', '.gitattributes': '*.txt text eol=crlf\n' });
  const crlf = gitIn(source, 'rev-parse', 'HEAD').trim();
  writeFileSync(path.join(source, 'a.txt'), 'one\nthree\n');
  gitIn(source, 'commit', '--quiet', '-am', 'a changed');
  const near = gitIn(source, 'rev-parse', 'HEAD').trim();
  gitIn(source, 'rm', '--quiet', '.gitattributes');
  gitIn(source, 'commit', '--quiet', '-m', 'no attributes');
  const plain = gitIn(source, 'rev-parse', 'HEAD').trim();
  const cache = new CheckoutCache(path.join(dir, 'kept'));
  try {
    const first = await workspaceAt(path.join(dir, 'r1'), source, cache, crlf);
    expect(readFileSync(path.join(first.workTree, 'b.txt'), 'utf8')).toBe('unchanged\r\n');
    // One file away, the same attributes: the kept checkout serves; only a.txt is written, into the upper layer.
    const second = await workspaceAt(path.join(dir, 'r2'), source, cache, near);
    expect(readFileSync(path.join(second.workTree, 'a.txt'), 'utf8')).toBe('one\r\nthree\r\n');
    expect(readdirSync(path.join(dir, 'r2', 'layer', 'upper')).sort()).toEqual(['.git', 'a.txt']);
    expect(readdirSync(path.join(dir, 'kept', String(process.getuid!())))).toHaveLength(1);
    // Without the attributes, b.txt is LF: a checkout written for that tree, not the CRLF one reused.
    const third = await workspaceAt(path.join(dir, 'r3'), source, cache, plain);
    expect(readFileSync(path.join(third.workTree, 'b.txt'), 'utf8')).toBe('unchanged\n');
    expect(readdirSync(path.join(dir, 'kept', String(process.getuid!())))).toHaveLength(2);
    for (const repo of [first, second, third]) expect(await repo.touched()).toEqual([]);
    expect(execFileSync('git', ['--git-dir', third.gitDir, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim()).toBe(
      plain,
    );
  } finally {
    await unmountUnder(dir);
  }
  expect(await mountsUnder(dir)).toEqual([]);
});
