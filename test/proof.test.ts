import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { buildBundle, verifyBundle } from '../proof/bundle';
import { keyIdOf } from '../proof/keys';
import { packTarGz, unpackTarGz } from '../proof/tar';
import { makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// A succeeded run's signed proof bundle, checked the way someone who trusts neither the agent nor the server would:
// offline, with the server's public key, by the real CLI.

const CLI = path.resolve(__dirname, '..', 'cli', 'main.js');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

/** An inline script's payload, as big as a new user's was (6 KB of base64): the log headers must not repeat it. */
const PAYLOAD = 'QUJD'.repeat(1536);

let stack: TestStack;
let id: string;
let bundle: Buffer;
let publicKeyPem: string;
let dir: string;

beforeAll(async () => {
  stack = await startTestStack();
  id = await stack.submit(spec(makeRepo(VALUE_REPO), `echo 2 > src/value.txt; : ${PAYLOAD}`));
  await stack.waitFor(id, ['awaiting_approval']);
  expect((await stack.api('GET', `/v1/runs/${id}/proof`)).status).toBe(404);
  await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'verified by hand' } });
  await stack.waitFor(id, ['succeeded']);
  dir = tempDir('proof');
  const download = await cli(['proof', id, '-o', dir], stack.env);
  expect(download.code).toBe(0);
  bundle = readFileSync(path.join(dir, `${id}-proof.tar.gz`));
  publicKeyPem = (await stack.api('GET', '/v1/keys')).body.keys[0].publicKeyPem;
  writeFileSync(path.join(dir, 'server.pub'), publicKeyPem);
});
afterAll(async () => {
  await stack?.stop();
});

test('the bundle holds the evidence; `nightshift verify --key` accepts it offline and names the run', async () => {
  const files = unpackTarGz(bundle);
  expect([...files.keys()].sort()).toEqual(['attestation.json', 'diff.patch', 'logs/agent.log', 'logs/check-value.log', 'manifest.json', 'review.md']);
  const manifest = JSON.parse(files.get('manifest.json')!.toString());
  expect(manifest).toMatchObject({ runId: id, approval: { kind: 'approve', by: 'admin', comment: 'verified by hand' } });
  expect(files.get('diff.patch')!.toString()).toMatch(/^\+2$/m);
  // Offline: no server in the environment, only the bundle and the key.
  const r = await cli(['verify', path.join(dir, `${id}-proof.tar.gz`), '--key', path.join(dir, 'server.pub')], { NIGHTSHIFT_URL: 'http://127.0.0.1:1', NIGHTSHIFT_TOKEN: '' });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`verified: run ${id}, 5 files, signed by ${keyIdOf(publicKeyPem)}`);
  expect(r.stdout).toContain(`final-commit  gitCommit:${manifest.finalCommit}`);
});

test('one flipped byte in any file, the manifest or the signature fails verification, naming it', async () => {
  const files = unpackTarGz(bundle);
  for (const name of files.keys()) {
    const tampered = new Map(files);
    const content = Buffer.from(files.get(name)!);
    const at = name === 'attestation.json' ? content.indexOf('"sig": "') + 10 : Math.floor(content.length / 2);
    content[at] ^= 0x01;
    tampered.set(name, content);
    const result = verifyBundle(packTarGz([...tampered].map(([n, c]) => ({ name: n, content: c }))), publicKeyPem);
    expect({ name, ok: result.ok }).toEqual({ name, ok: false });
    if (!result.ok) expect(result.problem).toMatch(name === 'attestation.json' ? /^attestation\.json/ : new RegExp(`^${name.replace('.', '\\.')} does not match its digest`));
  }
  // A file added after signing.
  const extra = [...files].map(([n, c]) => ({ name: n, content: c }));
  extra.push({ name: 'logs/planted.log', content: Buffer.from('trust me') });
  expect(verifyBundle(packTarGz(extra), publicKeyPem)).toEqual({ ok: false, problem: 'logs/planted.log is not in the signed statement' });
  // And through the CLI: exit 1, one line.
  const manifest = Buffer.from(files.get('manifest.json')!);
  manifest[10] ^= 0x01;
  const bad = path.join(dir, 'tampered.tar.gz');
  writeFileSync(bad, packTarGz([...files].map(([n, c]) => ({ name: n, content: n === 'manifest.json' ? manifest : c }))));
  const r = await cli(['verify', bad, '--key', path.join(dir, 'server.pub')]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^nightshift: verification failed: manifest\.json does not match its digest \(sha256:[0-9a-f]{64}\)\n$/);
});

test('a bundle signed by another key fails against the server’s key', () => {
  const files = unpackTarGz(bundle);
  files.delete('attestation.json');
  const other = generateKeyPairSync('ed25519');
  const otherPem = other.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const forged = buildBundle(id, 'f'.repeat(40), files, { privateKey: other.privateKey, publicKeyPem: otherPem, keyId: keyIdOf(otherPem) });
  expect(verifyBundle(forged, otherPem).ok).toBe(true);
  const result = verifyBundle(forged, publicKeyPem);
  expect(result).toEqual({ ok: false, problem: `attestation.json is not signed by key ${keyIdOf(publicKeyPem)} (signed by ${keyIdOf(otherPem)})` });
});

test("the agent's log header is one line, its inline command cut with an ellipsis, live and in the proof; the manifest keeps it whole", async () => {
  const headerOf = (log: string) => log.split('\n').filter((l) => l.startsWith('=== agent, iteration 1: '));
  const stored = unpackTarGz(bundle).get('logs/agent.log')!.toString();
  const live = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
  for (const log of [stored, live]) {
    expect(headerOf(log)).toEqual([expect.stringMatching(/^=== agent, iteration 1: sh -c mkdir -p notes; echo 2 > src\/value\.txt; : (QUJD)+Q?U?J?… ===$/)]);
    expect(headerOf(log)[0].length).toBe('=== agent, iteration 1: '.length + 200 + ' ==='.length);
    expect(log).not.toContain(PAYLOAD.slice(0, 1000));
  }
  expect(JSON.parse(unpackTarGz(bundle).get('manifest.json')!.toString()).agent.command).toContain(PAYLOAD);
});

test('proof -o NAME.tar.gz writes that file (its directory made), not a directory of that name', async () => {
  const file = path.join(dir, 'new', 'x.tar.gz');
  const r = await cli(['proof', id, '-o', file], stack.env);
  expect(r).toMatchObject({ code: 0, stdout: `${file}\n` });
  expect(statSync(file).isFile()).toBe(true);
  expect(readFileSync(file)).toEqual(bundle);
});

describe('verify takes the bundle as a user may hold it', () => {
  const key = () => path.join(dir, 'server.pub');
  let unpacked: string;
  beforeAll(() => {
    unpacked = path.join(dir, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', path.join(dir, `${id}-proof.tar.gz`), '-C', unpacked]);
  });

  test('unpacked into a directory (tar xzf): verified, as the .tar.gz is; a file added to it is named', async () => {
    const r = await cli(['verify', unpacked, '--key', key()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`verified: run ${id}, 5 files, signed by ${keyIdOf(publicKeyPem)}`);
    const planted = path.join(dir, 'planted');
    execFileSync('cp', ['-r', unpacked, planted]);
    writeFileSync(path.join(planted, 'logs', 'planted.log'), 'trust me');
    expect(await cli(['verify', planted, '--key', key()])).toMatchObject({ code: 1, stderr: 'nightshift: verification failed: logs/planted.log is not in the signed statement\n' });
  });

  test('repacked with tar, directory entries and "./" names included: verified', async () => {
    const named = path.join(dir, 'repacked.tar.gz');
    execFileSync('tar', ['-czf', named, '-C', unpacked, 'attestation.json', 'diff.patch', 'logs', 'manifest.json', 'review.md']);
    expect(execFileSync('tar', ['-tzf', named], { encoding: 'utf8' })).toMatch(/^logs\/$/m);
    const dotted = path.join(dir, 'dotted.tar.gz');
    execFileSync('tar', ['-czf', dotted, '-C', unpacked, '.']);
    expect(execFileSync('tar', ['-tzf', dotted], { encoding: 'utf8' })).toMatch(/^\.\/logs\/agent\.log$/m);
    for (const file of [named, dotted]) {
      const r = await cli(['verify', file, '--key', key()]);
      expect({ file, code: r.code, stderr: r.stderr }).toEqual({ file, code: 0, stderr: '' });
      expect(r.stdout).toContain(`verified: run ${id}, 5 files`);
    }
  });

  test('something that is neither: one line saying what it wants', async () => {
    const r = await cli(['verify', key(), '--key', key()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nightshift: verification failed: not a proof bundle \(the \.tar\.gz `nightshift proof` writes, or the directory it unpacks to\): .*\n$/);
  });
});
