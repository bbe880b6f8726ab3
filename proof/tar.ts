import { gunzipSync, gzipSync } from 'node:zlib';

// A minimal ustar reader and writer for proof bundles: regular files only, names up to 100 bytes. Enough for what
// Nightshift writes, and strict about what it reads; what `tar czf` adds when someone repacks a bundle (directory
// entries, a leading "./") carries no content and is let through.

const BLOCK = 512;

function header(name: string, size: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar: name too long: ${name}`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
  h.write('00000000000\0', 136, 'ascii'); // mtime 0: the same content gives the same bytes
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0' + '00', 257, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** A .tar.gz of the files, in the order given. */
export function packTarGz(files: { name: string; content: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(header(f.name, f.content.length), f.content, Buffer.alloc((BLOCK - (f.content.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return gzipSync(Buffer.concat(parts));
}

/** The files of a .tar.gz (directory entries skipped); throws on anything else but regular files with safe relative names. */
export function unpackTarGz(data: Buffer): Map<string, Buffer> {
  const tar = gunzipSync(data);
  const files = new Map<string, Buffer>();
  for (let at = 0; at + BLOCK <= tar.length; ) {
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '').replace(/^(\.\/)+/, '');
    const size = parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
    const type = String.fromCharCode(h[156]);
    if (type === '5' && size === 0) {
      at += BLOCK;
      continue;
    }
    if (!name || name.startsWith('/') || name.split('/').includes('..')) throw new Error(`tar: unsafe name "${name}"`);
    if ((type !== '0' && type !== '\0') || !Number.isInteger(size)) throw new Error(`tar: ${name} is not a regular file`);
    if (files.has(name)) throw new Error(`tar: ${name} appears twice`);
    files.set(name, Buffer.from(tar.subarray(at + BLOCK, at + BLOCK + size)));
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return files;
}
