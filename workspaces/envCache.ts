import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runHostTool } from '../processes/hostTools';
import { diskUsage } from '../sandbox/disk';
import { mountSafe, overlayReads } from '../sandbox/overlay';
import { withArtifactFile, type ArtifactStore } from '../store/artifacts';

/** What a setup left, as kept in a cache entry beside its trees (`workspace/<path>`…, `home/`). */
export interface EnvironmentManifest {
  key: string;
  /** Directories of the workspace the setup made (`node_modules`, `.venv`), relative, in the order git listed them. */
  paths: string[];
  /** Whether the sandbox's home is part of it (`home/`). */
  home: boolean;
  bytes: number;
  createdAt: string;
  /** The worker that ran the setup. */
  builtBy: string;
}

/** Where an entry came from for this run: made here now, kept on this worker, or fetched from the artifact store. */
export type EnvironmentSource = 'built' | 'worker' | 'store';

const MANIFEST = 'manifest.json';

/**
 * A worker's environments, by key: read-only trees that sandboxes see through overlays (sandbox/overlay.ts), never
 * written once made. Bounded (`maxBytes`, least recently used out, never one a sandbox is reading) and shared with the
 * fleet through the artifact store, packed, under the name `env-<key>`.
 */
export class EnvCache {
  constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    private readonly store: ArtifactStore,
  ) {}

  entryDir(key: string): string {
    return path.join(this.dir, key);
  }

  /** The entry kept on this worker, marked as just used; undefined when there is none. */
  async local(key: string): Promise<EnvironmentManifest | undefined> {
    const file = path.join(this.entryDir(key), MANIFEST);
    const manifest = await readManifest(file);
    if (manifest) await fs.utimes(file, new Date(), new Date());
    return manifest;
  }

  /**
   * Fetches the entry another worker built and packed into the artifact store; undefined when none did. An archive
   * that is not one this code could have made is refused (`refused` says why) and nothing of it kept: the caller
   * makes the entry again.
   */
  async fromStore(key: string): Promise<EnvironmentManifest | { refused: string } | undefined> {
    const id = await this.store.named(`env-${key}`);
    if (!id) return undefined;
    const staging = await this.staging();
    try {
      // GNU tar keeps every member inside `staging`: it refuses `..` in names, strips a leading `/` from names and
      // hard-link targets, and lays a link that could lead out down only after every other member is written.
      const unpacked = await withArtifactFile(this.store, id, (file) =>
        runHostTool('tar', ['-C', staging, '-xzf', file]),
      ).then(
        () => undefined,
        (err: Error) => `tar refused it: ${err.message.split('\n')[0]}`,
      );
      const refused = unpacked ?? (await foreignEntry(staging, key));
      return refused
        ? { refused: `the artifact store's env-${key} is refused: ${refused}` }
        : await this.adopt(key, staging);
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * Makes an entry: `build` fills a staging directory on the cache's filesystem (so its trees can be moved in, not
   * copied) and says what it holds. Another worker's process building the same key at once is fine: the first in
   * wins, the other's is dropped. Then packed into the artifact store for the fleet.
   */
  async add(
    key: string,
    builtBy: string,
    build: (staging: string) => Promise<Omit<EnvironmentManifest, 'key' | 'bytes' | 'createdAt' | 'builtBy'>>,
  ): Promise<EnvironmentManifest> {
    const staging = await this.staging();
    try {
      const made = await build(staging);
      const manifest: EnvironmentManifest = {
        key,
        ...made,
        bytes: await diskUsage([staging]),
        createdAt: new Date().toISOString(),
        builtBy,
      };
      await fs.writeFile(path.join(staging, MANIFEST), JSON.stringify(manifest, null, 2));
      const kept = await this.adopt(key, staging);
      await this.share(key);
      return kept;
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  }

  /** Pack an entry into the artifact store, named by its key, for the workers that do not have it. */
  private async share(key: string): Promise<void> {
    const file = path.join(os.tmpdir(), `nightshift-env-${key}-${randomUUID()}.tar.gz`);
    try {
      // gzip's fastest level: an entry is a build cache of thousands of files, packed once per entry on the worker
      // that made it: for Go's standard library built for tests (58 MB, 1,282 files) 0.7 s instead of the default
      // level's 1.9 s, for an archive a sixth larger.
      await runHostTool('tar', ['-C', this.entryDir(key), '-I', 'gzip -1', '-cf', file, '.']);
      await this.store.setName(`env-${key}`, await this.store.putFile(file));
    } finally {
      await fs.rm(file, { force: true });
    }
  }

  private async staging(): Promise<string> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    return fs.mkdtemp(path.join(this.dir, '.staging-'));
  }

  /** Moves a complete staging directory in as the entry (kept as is when one arrived first), then makes room. */
  private async adopt(key: string, staging: string): Promise<EnvironmentManifest> {
    await fs.rename(staging, this.entryDir(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
    const manifest = await this.local(key);
    if (!manifest) throw new Error(`environment ${key} vanished from ${this.dir}`);
    await this.evict(key);
    return manifest;
  }

  /** Least recently used entries out until the cache fits, except `keep` and any a sandbox reads. */
  async evict(keep?: string): Promise<string[]> {
    const entries: { key: string; used: number; bytes: number }[] = [];
    for (const key of await fs.readdir(this.dir).catch(() => [])) {
      if (key.startsWith('.')) continue;
      const file = path.join(this.entryDir(key), MANIFEST);
      const manifest = await readManifest(file);
      const stat = await fs.stat(file).catch(() => undefined);
      if (manifest && stat) entries.push({ key, used: stat.mtimeMs, bytes: manifest.bytes });
    }
    let total = entries.reduce((sum, e) => sum + e.bytes, 0);
    const removed: string[] = [];
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      if (e.key === keep || (await overlayReads(`${this.entryDir(e.key)}/`))) continue;
      await fs.rm(this.entryDir(e.key), { recursive: true, force: true });
      total -= e.bytes;
      removed.push(e.key);
    }
    return removed;
  }
}

/**
 * An entry's manifest; undefined when there is none, or it is not one this code made (an entry from the store is
 * mounted by its paths: each must be a plain relative path, every part a name an overlay's options can hold).
 */
async function readManifest(file: string): Promise<EnvironmentManifest | undefined> {
  let manifest: EnvironmentManifest;
  try {
    manifest = JSON.parse(await fs.readFile(file, 'utf8')) as EnvironmentManifest;
  } catch {
    return undefined;
  }
  const plain = (p: unknown) =>
    typeof p === 'string' &&
    p.split('/').every((part) => part !== '' && part !== '.' && part !== '..' && mountSafe(part));
  return Array.isArray(manifest.paths) && manifest.paths.every(plain) && typeof manifest.bytes === 'number'
    ? manifest
    : undefined;
}

/**
 * Why an unpacked entry is not one a setup made (undefined when it could be): its manifest missing or for another
 * key; a member outside the trees the manifest names; a directory a sandbox would see it through (`workspace/<path>`,
 * `home`) reached through a link, which the worker's mount would follow out of the entry; a member other than a
 * directory, a regular file or a link (a device node), or one with a set-id bit. Links inside the trees stay: a
 * sandbox resolves them in its own view, and the worker never follows them (`cp -a`, `du`, `rm` do not).
 */
async function foreignEntry(dir: string, key: string): Promise<string | undefined> {
  if (
    !(await fs.lstat(path.join(dir, MANIFEST)).then(
      (s) => s.isFile(),
      () => false,
    ))
  )
    return `no ${MANIFEST} file`;
  const manifest = await readManifest(path.join(dir, MANIFEST));
  if (manifest?.key !== key) return `its ${MANIFEST} is not this environment's`;
  const roots = [...manifest.paths.map((p) => `workspace/${p}`), ...(manifest.home ? ['home'] : [])];
  for (const root of roots) {
    const parts = root.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (
        !(await fs.lstat(path.join(dir, rel)).then(
          (s) => s.isDirectory(),
          () => false,
        ))
      )
        return `${rel} is not a directory`;
    }
  }
  const named = (rel: string) =>
    rel === MANIFEST || roots.some((root) => root === rel || root.startsWith(`${rel}/`) || rel.startsWith(`${root}/`));
  for (const rel of await fs.readdir(dir, { recursive: true })) {
    if (!named(rel)) return `${rel} is in no tree its ${MANIFEST} names`;
    const stat = await fs.lstat(path.join(dir, rel));
    if (!stat.isDirectory() && !stat.isFile() && !stat.isSymbolicLink())
      return `${rel} is not a file, directory or link`;
    if (stat.mode & 0o6000) return `${rel} has a set-id bit`;
  }
  return undefined;
}
