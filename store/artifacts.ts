import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const ID = /^[0-9a-f]{64}$/;

/**
 * Content-addressed blobs: logs, transcripts, diffs, checkpoints, proof bundles. An artifact's id is the sha256 of
 * its bytes, so Temporal history carries only ids and digests, and putting the same bytes twice stores them once.
 * Drivers: a directory (`FsArtifactStore`; a shared mount serves several machines) and an S3-compatible bucket
 * (`S3ArtifactStore`); `openArtifactStore` picks the one the server's config names.
 */
export interface ArtifactStore {
  /** Where the artifacts live (a directory or `s3://bucket/prefix`), for messages. */
  readonly location: string;
  put(content: string | Buffer): Promise<string>;
  /** Stores a file without reading it into memory (checkpoint bundles can be large). */
  putFile(source: string): Promise<string>;
  /** The whole artifact; an unknown id throws `ArtifactNotFoundError`. */
  get(id: string): Promise<Buffer>;
  /** The artifact as a stream, to serve or copy without holding it in memory; an unknown id throws before streaming. */
  open(id: string): Promise<Readable>;
  has(id: string): Promise<boolean>;
  /**
   * A name pointing at an artifact, overwritten by the last writer: how workers find what another built by what it
   * is for (an environment cache entry by its key), where ids only say what the bytes are.
   */
  setName(name: string, id: string): Promise<void>;
  /** The artifact a name points at; undefined when nothing was named so. */
  named(name: string): Promise<string | undefined>;
}

export class ArtifactNotFoundError extends Error {
  constructor(
    readonly id: string,
    location: string,
  ) {
    super(`artifact ${id} is not in the artifact store (${location})`);
    this.name = 'ArtifactNotFoundError';
  }
}

export function checkArtifactId(id: string): string {
  if (!ID.test(id)) throw new Error(`not an artifact id: ${id.slice(0, 100)}`);
  return id;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,127}$/;

export function checkArtifactName(name: string): string {
  if (!NAME.test(name)) throw new Error(`not an artifact name: ${name.slice(0, 130)}`);
  return name;
}

export function artifactIdOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The id a file would get, read as a stream. */
export async function artifactIdOfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * Run `use` on a local copy of an artifact (git fetches from a checkpoint bundle by path), streamed into a private
 * temp dir that is removed afterwards, whatever the driver.
 */
export async function withArtifactFile<T>(
  store: ArtifactStore,
  id: string,
  use: (file: string) => Promise<T>,
): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nightshift-artifact-'));
  try {
    const file = path.join(dir, id);
    await pipeline(await store.open(id), createWriteStream(file));
    return await use(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
