import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import {
  ArtifactNotFoundError,
  artifactIdOf,
  artifactIdOfFile,
  checkArtifactId,
  checkArtifactName,
  type ArtifactStore,
} from './artifacts';

/**
 * Artifacts as files under one directory (`$NIGHTSHIFT_HOME/artifacts` by default), fanned out by the id's first byte.
 */
export class FsArtifactStore implements ArtifactStore {
  constructor(readonly location: string) {}

  async put(content: string | Buffer): Promise<string> {
    const bytes = typeof content === 'string' ? Buffer.from(content) : content;
    const id = artifactIdOf(bytes);
    await this.store(id, (tmp) => fs.writeFile(tmp, bytes));
    return id;
  }

  async putFile(source: string): Promise<string> {
    const id = await artifactIdOfFile(source);
    await this.store(id, (tmp) => fs.copyFile(source, tmp));
    return id;
  }

  async get(id: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.pathOf(id));
    } catch (err) {
      throw this.notFound(err, id);
    }
  }

  async open(id: string): Promise<Readable> {
    // Open before streaming, so an unknown id is an error here, not in the middle of a response.
    const handle = await fs.open(this.pathOf(id)).catch((err) => {
      throw this.notFound(err, id);
    });
    return handle.createReadStream();
  }

  async has(id: string): Promise<boolean> {
    const file = this.pathOf(id);
    try {
      await fs.access(file);
      return true;
    } catch {
      return false;
    }
  }

  async setName(name: string, id: string): Promise<void> {
    const file = path.join(this.location, 'names', checkArtifactName(name));
    await fs.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    await fs.writeFile(tmp, checkArtifactId(id));
    await fs.rename(tmp, file);
  }

  async named(name: string): Promise<string | undefined> {
    const id = await fs
      .readFile(path.join(this.location, 'names', checkArtifactName(name)), 'utf8')
      .catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
    return id === undefined ? undefined : checkArtifactId(id.trim());
  }

  private pathOf(id: string): string {
    checkArtifactId(id);
    return path.join(this.location, id.slice(0, 2), id);
  }

  /** Write then rename, so a reader never sees half an artifact and concurrent writers of the same bytes agree. */
  private async store(id: string, write: (tmp: string) => Promise<void>): Promise<void> {
    if (await this.has(id)) return;
    const file = this.pathOf(id);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    try {
      await write(tmp);
      await fs.rename(tmp, file);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  private notFound(err: unknown, id: string): Error {
    return (err as NodeJS.ErrnoException).code === 'ENOENT'
      ? new ArtifactNotFoundError(id, this.location)
      : (err as Error);
  }
}
