import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

// Proof bundles as .tar.gz, through tar-stream. Writing: regular files only, with fixed metadata, so the same files
// give the same bytes. Reading is strict, as anyone may hand `nightshift verify` a bundle: regular files with safe
// relative names, each once, and no more bytes than a bundle holds; what `tar czf` adds when someone repacks a bundle
// (directory entries, a leading "./") carries no content and is let through.

/**
 * The most a bundle unpacks to. A bundle's largest files are the agent's transcript (64 MiB) and logs (16 MiB each, up
 * to three per check); past this it is not one Nightshift wrote, and reading on would only fill memory.
 */
export const MAX_UNPACKED_BYTES = 1024 ** 3;

/** A .tar.gz of the files, in the order given. */
export async function packTarGz(files: { name: string; content: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  const packed = (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  })();
  // mtime 0, no owner: nothing of when or by whom, so the same content gives the same bytes.
  for (const f of files)
    pack.entry(
      { name: f.name, type: 'file', mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' },
      f.content,
    );
  pack.finalize();
  return gzipSync(await packed);
}

/** Passes bytes on until `limit` of them went by, then fails: a gzip bomb stops here, whatever the tar inside says. */
function atMost(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limit) done(new Error(`tar: the archive unpacks to more than ${limit} bytes`));
      else done(null, chunk);
    },
  });
}

/** Why the entry is refused, or undefined; `unpacked` counts the bytes of the files taken so far. */
function refusal(
  header: tar.Header,
  name: string,
  taken: Map<string, Buffer>,
  unpacked: number,
  limit: number,
): string | undefined {
  if (!name || name.startsWith('/') || name.split('/').includes('..')) return `tar: unsafe name "${header.name}"`;
  if (header.type !== 'file') return `tar: ${name} is not a regular file (${header.type})`;
  if (taken.has(name)) return `tar: ${name} appears twice`;
  if (unpacked + header.size > limit)
    return `tar: ${name} (${header.size} bytes) takes the archive past ${limit} bytes`;
}

/**
 * The files of a .tar.gz (directory entries skipped); throws on anything else but regular files with safe relative
 * names, on a name given twice, and past `limit` unpacked bytes.
 */
export async function unpackTarGz(data: Buffer, limit = MAX_UNPACKED_BYTES): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  let unpacked = 0;
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const name = header.name.replace(/^(\.\/)+/, '');
    if (header.type === 'directory' && header.size === 0) {
      stream.resume();
      return next();
    }
    const refused = refusal(header, name, files, unpacked, limit);
    if (refused) return next(new Error(refused));
    const chunks: Buffer[] = [];
    stream.on('data', (chunk) => chunks.push(chunk as Buffer));
    stream.on('end', () => {
      files.set(name, Buffer.concat(chunks));
      unpacked += header.size;
      next();
    });
  });
  const gunzip = createGunzip();
  gunzip.end(data);
  await pipeline(gunzip, atMost(limit), extract);
  return files;
}
