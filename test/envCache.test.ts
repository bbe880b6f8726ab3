import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { EnvCache } from '../workspaces/envCache';
import { mountsUnder, overlayOnto, unmountUnder } from '../sandbox/overlay';
import { FsArtifactStore } from '../store/fsArtifacts';
import { tempDir } from './helpers/stack';
import { tarball, type TarMember } from './helpers/tarball';

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
  expect(
    await overlayOnto(
      path.join(cache.entryDir('aaa'), 'workspace', 'node_modules'),
      path.join(sandbox, 'node_modules'),
      path.join(sandbox, 'env'),
    ),
  ).toBe('overlay');
  try {
    await add(cache, 'ccc', 300);
    expect(
      readdirSync(path.join(root, 'cache'))
        .filter((k) => !k.startsWith('.'))
        .sort(),
    ).toEqual(['aaa', 'ccc']);
  } finally {
    await unmountUnder(sandbox);
  }
  expect(await mountsUnder(sandbox)).toEqual([]);
  // Used again, aaa is the newest; the next entry pushes out ccc instead.
  expect(await cache.local('aaa')).toMatchObject({ key: 'aaa', paths: ['node_modules'] });
  await add(cache, 'ddd', 300);
  expect(
    readdirSync(path.join(root, 'cache'))
      .filter((k) => !k.startsWith('.'))
      .sort(),
  ).toEqual(['aaa', 'ddd']);
  // What left this worker is still in the store, for any worker.
  expect(await cache.fromStore('bbb')).toMatchObject({ key: 'bbb', builtBy: 'test-worker' });
  expect(existsSync(path.join(cache.entryDir('bbb'), 'workspace', 'node_modules', 'blob'))).toBe(true);
  expect(await cache.fromStore('zzz')).toBeUndefined();
});

test('an entry from the store with `..` or absolute names, links that lead out, a device node, a set-id bit or a foreign manifest is refused; nothing of it lands outside', async () => {
  const root = tempDir('env-store-attack');
  const store = new FsArtifactStore(path.join(root, 'artifacts'));
  const cache = new EnvCache(path.join(root, 'cache'), 10 * 1024 * KIB, store);
  const outside = path.join(root, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret'), 'host secret\n');
  const manifest = (key: string, home = false): TarMember => ({
    name: 'manifest.json',
    body: JSON.stringify({
      key,
      paths: home ? [] : ['node_modules'],
      home,
      bytes: 1,
      createdAt: '',
      builtBy: 'elsewhere',
    }),
  });
  const dirs: TarMember[] = [
    { name: 'workspace/', type: 'dir' },
    { name: 'workspace/node_modules/', type: 'dir' },
  ];
  // Each attack, and the words its refusal gives.
  const attacks: Record<string, [TarMember[], string]> = {
    // The mount would follow a root that is a link out of the entry: the host's directory in the sandbox.
    'linked-root': [
      [
        manifest('linked-root'),
        { name: 'workspace/', type: 'dir' },
        { name: 'workspace/node_modules', type: 'symlink', link: outside },
      ],
      'workspace/node_modules is not a directory',
    ],
    'linked-home': [
      [manifest('linked-home', true), { name: 'home', type: 'symlink', link: outside }],
      'home is not a directory',
    ],
    dotdot: [
      [
        manifest('dotdot'),
        ...dirs,
        { name: '../planted', body: 'x' },
        { name: 'workspace/node_modules/../../../../planted', body: 'x' },
      ],
      'tar refused it',
    ],
    // tar strips the `/`: the member lands inside, in no tree the manifest names.
    absolute: [[manifest('absolute'), ...dirs, { name: `${outside}/planted`, body: 'x' }], 'is in no tree'],
    'write-through-link': [
      [
        manifest('write-through-link'),
        ...dirs,
        { name: 'workspace/node_modules/out', type: 'symlink', link: outside },
        { name: 'workspace/node_modules/out/planted', body: 'x' },
      ],
      'tar refused it',
    ],
    'hardlink-absolute': [
      [
        manifest('hardlink-absolute'),
        ...dirs,
        { name: 'workspace/node_modules/hard', type: 'hardlink', link: `${outside}/secret` },
      ],
      'tar refused it',
    ],
    'hardlink-dotdot': [
      [
        manifest('hardlink-dotdot'),
        ...dirs,
        { name: 'workspace/node_modules/hard', type: 'hardlink', link: '../../../outside/secret' },
      ],
      'tar refused it',
    ],
    device: [
      [manifest('device'), ...dirs, { name: 'workspace/node_modules/null', type: 'chardev' }],
      process.getuid!() === 0 ? 'is not a file, directory or link' : 'tar refused it',
    ],
    setuid: [
      [manifest('setuid'), ...dirs, { name: 'workspace/node_modules/tool', body: '#!/bin/sh\n', mode: 0o4755 }],
      'has a set-id bit',
    ],
    'other-key': [[manifest('another'), ...dirs], 'is not this environment'],
  };
  for (const [key, [members, why]] of Object.entries(attacks)) {
    await store.setName(`env-${key}`, await store.put(tarball(members)));
    const got = await cache.fromStore(key);
    expect({ key, got }).toEqual({ key, got: { refused: expect.stringContaining(why) } });
    expect(existsSync(cache.entryDir(key))).toBe(false);
  }
  // Nothing landed outside the cache, nothing outside was changed, and no staging directory is left behind.
  expect(readdirSync(outside)).toEqual(['secret']);
  expect(readFileSync(path.join(outside, 'secret'), 'utf8')).toBe('host secret\n');
  expect(readdirSync(root).sort()).toEqual(['artifacts', 'cache', 'outside']);
  expect(existsSync(path.join(path.dirname(root), 'planted'))).toBe(false);
  expect(readdirSync(path.join(root, 'cache'))).toEqual([]);
  // Links inside an entry's trees stay (npm's node_modules/.bin holds them): an honest entry with one is adopted.
  const honest = [
    manifest('honest'),
    ...dirs,
    { name: 'workspace/node_modules/dep/', type: 'dir' },
    { name: 'workspace/node_modules/dep/cli.js', body: 'x' },
    { name: 'workspace/node_modules/.bin/', type: 'dir' },
    { name: 'workspace/node_modules/.bin/dep', type: 'symlink', link: '../dep/cli.js' },
  ] satisfies TarMember[];
  await store.setName('env-honest', await store.put(tarball(honest)));
  expect(await cache.fromStore('honest')).toMatchObject({ key: 'honest', paths: ['node_modules'] });
});
