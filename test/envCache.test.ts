import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { EnvCache } from '../activities/envCache';
import { mountsUnder, overlayOnto, unmountUnder } from '../sandbox/overlay';
import { FsArtifactStore } from '../store/fsArtifacts';
import { tempDir } from './helpers/stack';

// The environment cache's bounds, with real overlays: least recently used out, never an entry a sandbox reads.

const KIB = 1024;

/** An entry of about `kib` KiB under the key, made as a setup's output is. */
function add(cache: EnvCache, key: string, kib: number) {
  return cache.add(key, 'test-worker', async (staging) => {
    mkdirSync(path.join(staging, 'workspace', 'node_modules'), { recursive: true });
    writeFileSync(path.join(staging, 'workspace', 'node_modules', 'blob'), Buffer.alloc(kib * KIB, 1));
    return { paths: ['node_modules'], home: false };
  });
}

test('a full cache drops the least recently used entries, keeps one a sandbox reads, and shares each through the store', async () => {
  const root = tempDir('env-cache');
  const store = new FsArtifactStore(path.join(root, 'artifacts'));
  const cache = new EnvCache(path.join(root, 'cache'), 700 * KIB, store);
  await add(cache, 'aaa', 300);
  await add(cache, 'bbb', 300);
  // A sandbox reads aaa: it stays, though the oldest.
  const sandbox = path.join(root, 'sandbox');
  mkdirSync(path.join(sandbox, 'node_modules'), { recursive: true });
  expect(await overlayOnto(path.join(cache.entryDir('aaa'), 'workspace', 'node_modules'), path.join(sandbox, 'node_modules'), path.join(sandbox, 'env'))).toBe('overlay');
  try {
    await add(cache, 'ccc', 300);
    expect(readdirSync(path.join(root, 'cache')).filter((k) => !k.startsWith('.')).sort()).toEqual(['aaa', 'ccc']);
  } finally {
    await unmountUnder(sandbox);
  }
  expect(await mountsUnder(sandbox)).toEqual([]);
  // Used again, aaa is the newest; the next entry pushes out ccc instead.
  expect(await cache.local('aaa')).toMatchObject({ key: 'aaa', paths: ['node_modules'] });
  await add(cache, 'ddd', 300);
  expect(readdirSync(path.join(root, 'cache')).filter((k) => !k.startsWith('.')).sort()).toEqual(['aaa', 'ddd']);
  // What left this worker is still in the store, for any worker.
  expect(await cache.fromStore('bbb')).toMatchObject({ key: 'bbb', builtBy: 'test-worker' });
  expect(existsSync(path.join(cache.entryDir('bbb'), 'workspace', 'node_modules', 'blob'))).toBe(true);
  expect(await cache.fromStore('zzz')).toBeUndefined();
});
