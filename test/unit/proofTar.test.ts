import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { MAX_UNPACKED_BYTES, packTarGz, unpackTarGz } from '../../proof/tar';

// The proof bundle's tar: what `nightshift verify` reads from anyone. Hostile archives are made with tar-stream's own
// writer, which writes whatever header it is given.

type Entry = Partial<tar.Header> & { name: string; content?: Buffer };

/** A .tar.gz of the entries exactly as given. */
async function hostile(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { content, ...header } of entries) pack.entry(header, content ?? Buffer.alloc(0));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

const manifest = { name: 'manifest.json', content: Buffer.from('{"runId":"r1"}\n') };

/** What the header of each entry of a .tar.gz says. */
async function headersOf(data: Buffer): Promise<tar.Header[]> {
  const headers: tar.Header[] = [];
  for await (const entry of tar.extract().end(gunzipSync(data))) {
    headers.push(entry.header);
    entry.resume();
  }
  return headers;
}

describe('packTarGz: a bundle of regular files', () => {
  const files = [
    manifest,
    { name: 'logs/agent.log', content: Buffer.from('agent said\n'.repeat(100)) },
    { name: 'attestation.json', content: Buffer.alloc(0) },
  ];

  test('unpacks to the same files, in the order given', async () => {
    const unpacked = await unpackTarGz(await packTarGz(files));
    expect([...unpacked]).toEqual(files.map((f) => [f.name, f.content]));
  });

  test('the same files give the same bytes: mtime 0, mode 0644, no owner', async () => {
    const packed = await packTarGz(files);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await packTarGz(files)).equals(packed)).toBe(true);
    expect(await headersOf(packed)).toEqual(
      files.map((f) =>
        expect.objectContaining({
          name: f.name,
          type: 'file',
          size: f.content.length,
          mode: 0o644,
          mtime: new Date(0),
          uid: 0,
          gid: 0,
          uname: '',
          gname: '',
        }),
      ),
    );
  });

  test('GNU tar reads it: the files, in order, with their content', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'proof-tar-'));
    try {
      writeFileSync(path.join(dir, 'bundle.tar.gz'), await packTarGz(files));
      expect(execFileSync('tar', ['-tzf', 'bundle.tar.gz'], { cwd: dir, encoding: 'utf8' })).toBe(
        'manifest.json\nlogs/agent.log\nattestation.json\n',
      );
      mkdirSync(path.join(dir, 'out'));
      execFileSync('tar', ['-xzf', 'bundle.tar.gz', '-C', 'out'], { cwd: dir });
      expect(readFileSync(path.join(dir, 'out/logs/agent.log'))).toEqual(files[1].content);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('unpackTarGz: what anyone may hand `nightshift verify`', () => {
  test('a bundle repacked with `tar czf` (directory entries, "./" names) gives its files under their own names', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'proof-tar-'));
    try {
      mkdirSync(path.join(dir, 'bundle/logs'), { recursive: true });
      writeFileSync(path.join(dir, 'bundle/manifest.json'), manifest.content);
      writeFileSync(path.join(dir, 'bundle/logs/agent.log'), 'agent said\n');
      execFileSync('tar', ['-czf', 'repacked.tar.gz', '-C', 'bundle', '.'], { cwd: dir });
      const repacked = readFileSync(path.join(dir, 'repacked.tar.gz'));
      expect((await headersOf(repacked)).map((h) => `${h.type} ${h.name}`).sort()).toEqual([
        'directory ./',
        'directory ./logs/',
        'file ./logs/agent.log',
        'file ./manifest.json',
      ]);
      const unpacked = await unpackTarGz(repacked);
      expect(new Map([...unpacked].sort())).toEqual(
        new Map([
          ['logs/agent.log', Buffer.from('agent said\n')],
          ['manifest.json', manifest.content],
        ]),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each<[string, Entry, string]>([
    [
      'a symlink',
      { name: 'logs/agent.log', type: 'symlink', linkname: '/etc/passwd' },
      'tar: logs/agent.log is not a regular file (symlink)',
    ],
    [
      'a hard link',
      { name: 'diff.patch', type: 'link', linkname: 'manifest.json' },
      'tar: diff.patch is not a regular file (link)',
    ],
    [
      'a character device',
      { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 },
      'tar: null is not a regular file (character-device)',
    ],
    [
      'a block device',
      { name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 },
      'tar: sda is not a regular file (block-device)',
    ],
    ['a fifo', { name: 'pipe', type: 'fifo' }, 'tar: pipe is not a regular file (fifo)'],
    ['a name climbing out', { name: '../x', content: Buffer.from('x') }, 'tar: unsafe name "../x"'],
    [
      'a name climbing out under ./',
      { name: './logs/../../x', content: Buffer.from('x') },
      'tar: unsafe name "./logs/../../x"',
    ],
    ['an absolute name', { name: '/abs', content: Buffer.from('x') }, 'tar: unsafe name "/abs"'],
  ])('refuses %s, naming it', async (_what, entry, message) => {
    await expect(unpackTarGz(await hostile([manifest, entry]))).rejects.toThrow(message);
  });

  test('refuses a name given twice, also once as "./"', async () => {
    await expect(unpackTarGz(await hostile([manifest, { ...manifest, content: Buffer.from('{}') }]))).rejects.toThrow(
      'tar: manifest.json appears twice',
    );
    await expect(unpackTarGz(await hostile([manifest, { ...manifest, name: './manifest.json' }]))).rejects.toThrow(
      'tar: manifest.json appears twice',
    );
  });

  test('refuses an entry that takes the archive past the limit, naming it, before reading it', async () => {
    const limit = 64 * 1024;
    const files = [manifest, { name: 'logs/agent.log', content: Buffer.alloc(limit / 2) }];
    expect((await unpackTarGz(await hostile(files), limit)).get('logs/agent.log')!.length).toBe(limit / 2);
    const big = { name: 'big', content: Buffer.alloc(limit / 2) };
    await expect(unpackTarGz(await hostile([...files, big]), limit)).rejects.toThrow(
      `tar: big (${limit / 2} bytes) takes the archive past ${limit} bytes`,
    );
  });

  test('stops a gzip bomb (a few MB that unpack to more than any bundle) at the default limit', async () => {
    // the header and content, no end blocks
    const tarOfManifest = gunzipSync(await hostile([manifest])).subarray(0, 1024);
    // Zero blocks are what ends an archive; tar readers read on past them, and so through all of these. Gzip members
    // one after another unpack as one stream.
    const zeros = gzipSync(Buffer.alloc(64 * 1024 ** 2));
    const bomb = Buffer.concat([
      gzipSync(tarOfManifest),
      ...Array<Buffer>(MAX_UNPACKED_BYTES / 64 / 1024 ** 2 + 1).fill(zeros),
    ]);
    expect(bomb.length).toBeLessThan(MAX_UNPACKED_BYTES / 100);
    await expect(unpackTarGz(bomb)).rejects.toThrow(
      `tar: the archive unpacks to more than ${MAX_UNPACKED_BYTES} bytes`,
    );
  });

  test('refuses what is not a .tar.gz, and a truncated one', async () => {
    await expect(unpackTarGz(Buffer.from('not gzip'))).rejects.toThrow(/incorrect header check/);
    const whole = await hostile([manifest]);
    await expect(unpackTarGz(gzipSync(gunzipSync(whole).subarray(0, 600)))).rejects.toThrow(/Unexpected end of data/);
  });
});
