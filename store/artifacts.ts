import { createHash, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

const ID = /^[0-9a-f]{64}$/;

/**
 * Content-addressed files under `<home>/artifacts`: logs, diffs, checkpoints, manifests.
 * An artifact's id is the sha256 of its bytes, so Temporal history carries only ids and digests.
 */
export class ArtifactStore {
  readonly dir: string;

  constructor(home: string) {
    this.dir = path.join(home, 'artifacts');
  }

  async put(content: string | Buffer): Promise<string> {
    const bytes = typeof content === 'string' ? Buffer.from(content) : content;
    const id = createHash('sha256').update(bytes).digest('hex');
    const file = this.pathOf(id);
    try {
      await fs.access(file);
      return id;
    } catch {
      // not stored yet
    }
    await fs.mkdir(path.dirname(file), { recursive: true });
    // Write then rename, so a reader never sees half an artifact.
    const tmp = `${file}.${randomUUID()}.tmp`;
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, file);
    return id;
  }

  async putFile(source: string): Promise<string> {
    return this.put(await fs.readFile(source));
  }

  async get(id: string): Promise<Buffer> {
    return fs.readFile(this.pathOf(id));
  }

  async has(id: string): Promise<boolean> {
    try {
      await fs.access(this.pathOf(id));
      return true;
    } catch {
      return false;
    }
  }

  pathOf(id: string): string {
    if (!ID.test(id)) throw new Error(`not an artifact id: ${id}`);
    return path.join(this.dir, id.slice(0, 2), id);
  }
}
