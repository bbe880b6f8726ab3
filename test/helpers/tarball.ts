import { gzipSync } from 'node:zlib';

// Archives written byte by byte (ustar), so a test can hold what no honest `tar -c` would make: `..` and absolute
// names, links that lead out, device nodes, set-id bits.

export interface TarMember {
  name: string;
  /** `file` by default. */
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev';
  body?: string;
  /** A link's target. */
  link?: string;
  mode?: number;
}

const TYPE_FLAG = { file: '0', hardlink: '1', symlink: '2', chardev: '3', dir: '5' } as const;

function header(m: TarMember, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (text: string, at: number, len: number) => h.write(text.slice(0, len), at, len, 'utf8');
  const octal = (n: number, at: number, len: number) => put(`${n.toString(8).padStart(len - 1, '0')}\0`, at, len);
  const type = m.type ?? 'file';
  put(m.name, 0, 100);
  octal(m.mode ?? (type === 'dir' ? 0o755 : 0o644), 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(1_700_000_000, 136, 12);
  h.write(TYPE_FLAG[type], 156, 1, 'utf8');
  put(m.link ?? '', 157, 100);
  put('ustar\u000000', 257, 8);
  // /dev/null's numbers, for a device node.
  if (type === 'chardev') {
    octal(1, 329, 8);
    octal(3, 337, 8);
  }
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

/** A gzipped tar archive of `members`, in order. */
export function tarball(members: TarMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const body = Buffer.from(m.body ?? '');
    parts.push(header(m, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}
