import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

// The server's signing keys under `$NIGHTSHIFT_HOME/keys` (docs/proof.md, "Keys"): `signing.key` is the one in use
// (private, mode 0600), `signing.pub` its public half, and `keys.json` every key the server ever signed with, each with
// its validity window, so proofs signed before a rotation still verify. A rotated key's private half is deleted.

export interface SigningKey {
  privateKey: KeyObject;
  publicKeyPem: string;
  keyId: string;
}

/** A key the server signs or signed with, as `GET /v1/keys` lists it. */
export const PublicKeyEntrySchema = z.object({
  keyid: z.string().describe('sha256 of the public key (SPKI DER): what a DSSE signature names'),
  algorithm: z.literal('ed25519'),
  publicKeyPem: z.string(),
  sshPublicKey: z
    .string()
    .describe(
      "The same key as OpenSSH writes it (ssh-ed25519 AAAA…): for git's allowed_signers and a forge's signing keys",
    ),
  validFrom: z.iso.datetime(),
  validUntil: z.iso.datetime().optional().describe('Unset while the key is in use; set when it was rotated out'),
});
export type PublicKeyEntry = z.infer<typeof PublicKeyEntrySchema>;

/** Who signs the delivered commits: the committer of every commit a run makes (git/git.ts). */
export const COMMIT_SIGNER = 'nightshift@localhost';

/** The key id: sha256 of the public key's DER (SPKI), so anyone holding the public key can compute it. */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/** An SSH wire-format string: uint32 length, then the bytes. */
export function sshString(data: Buffer | string): Buffer {
  const bytes = Buffer.from(data);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** The ed25519 public key's SSH blob (`string "ssh-ed25519", string key`). */
export function sshPublicKeyBlob(publicKeyPem: string): Buffer {
  const raw = Buffer.from(createPublicKey(publicKeyPem).export({ format: 'jwk' }).x!, 'base64url');
  return Buffer.concat([sshString('ssh-ed25519'), sshString(raw)]);
}

export function sshPublicKeyOf(publicKeyPem: string): string {
  return `ssh-ed25519 ${sshPublicKeyBlob(publicKeyPem).toString('base64')}`;
}

const keysDir = (home: string) => path.join(home, 'keys');
const files = (home: string) => ({
  privateKey: path.join(keysDir(home), 'signing.key'),
  publicKey: path.join(keysDir(home), 'signing.pub'),
  history: path.join(keysDir(home), 'keys.json'),
});

/** The server's current ed25519 signing key, made at the server's first start. */
export function ensureSigningKey(home: string): SigningKey {
  const f = files(home);
  if (!existsSync(f.privateKey)) {
    mkdirSync(keysDir(home), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    // wx: two workers starting at once must not overwrite each other's key.
    try {
      writeFileSync(f.privateKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  // Every GET of a run lists the keys: the parsed key is kept until its file changes (a rotation renames a new one in).
  const { ino, mtimeMs, size } = statSync(f.privateKey);
  const version = `${ino}:${mtimeMs}:${size}`;
  const known = parsedKeys.get(f.privateKey);
  if (known?.version === version) return known.key;
  const privateKey = createPrivateKey(readFileSync(f.privateKey));
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  if (!existsSync(f.publicKey)) writeFileSync(f.publicKey, publicKeyPem);
  const key = { privateKey, publicKeyPem, keyId: keyIdOf(publicKeyPem) };
  parsedKeys.set(f.privateKey, { version, key });
  return key;
}

const parsedKeys = new Map<string, { version: string; key: SigningKey }>();

/** Every key the server signs or signed with, the current one last. */
export function listKeys(home: string): PublicKeyEntry[] {
  const current = ensureSigningKey(home);
  const f = files(home);
  const history: PublicKeyEntry[] = existsSync(f.history) ? JSON.parse(readFileSync(f.history, 'utf8')) : [];
  if (history.some((k) => k.keyid === current.keyId)) return history;
  // A home from before rotation (or a rotation cut short): the current key is valid since it was made.
  const entry = keyEntry(current.publicKeyPem, statSync(f.privateKey).mtime.toISOString());
  writeAtomic(f.history, JSON.stringify([...history, entry], null, 2) + '\n');
  return [...history, entry];
}

/**
 * A new signing key in place of the current one: the old key's window closes now and its private half is deleted;
 * what it signed still verifies against its public half, which stays listed.
 */
export function rotateSigningKey(home: string): { retired: PublicKeyEntry; current: PublicKeyEntry } {
  const f = files(home);
  const history = listKeys(home);
  const now = new Date().toISOString();
  const old = history[history.length - 1];
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  const retired = { ...old, validUntil: now };
  const current = keyEntry(publicKeyPem, now);
  // The new key is listed before anything signs with it, and the old one stays listed: no proof is ever signed by
  // a key GET /v1/keys does not show.
  writeAtomic(f.history, JSON.stringify([...history.slice(0, -1), retired, current], null, 2) + '\n');
  writeAtomic(f.privateKey, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  writeAtomic(f.publicKey, publicKeyPem);
  return { retired, current };
}

function keyEntry(publicKeyPem: string, validFrom: string): PublicKeyEntry {
  return {
    keyid: keyIdOf(publicKeyPem),
    algorithm: 'ed25519',
    publicKeyPem,
    sshPublicKey: sshPublicKeyOf(publicKeyPem),
    validFrom,
  };
}

/** Written beside, then renamed over: a reader sees the old file or the new one, never half of one. */
function writeAtomic(file: string, content: string, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, content, { mode });
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The key `keyid` names, if it was valid at `at` (when a proof says it was signed). */
export function keyValidAt(keys: PublicKeyEntry[], keyid: string, at: string | undefined): PublicKeyEntry | undefined {
  const key = keys.find((k) => k.keyid === keyid);
  if (!key) return undefined;
  // A statement that says no time (or no date) is taken only from the key in use: a retired one must show its window.
  const when = at === undefined ? NaN : Date.parse(at);
  if (Number.isNaN(when)) return key.validUntil ? undefined : key;
  return when >= Date.parse(key.validFrom) && (!key.validUntil || when <= Date.parse(key.validUntil)) ? key : undefined;
}

/**
 * git's allowed_signers (ssh-keygen(1) ALLOWED SIGNERS): every key, each limited to its window and to git's namespace.
 */
export function allowedSigners(keys: PublicKeyEntry[], principal: string): string {
  // 2026-12-01T05:20:11.123Z → 20261201052011Z (UTC).
  const stamp = (iso: string) => iso.replace(/[-:T]/g, '').replace(/\.\d+/, '');
  return (
    keys
      .map(
        (k) =>
          `${principal} namespaces="git",valid-after="${stamp(k.validFrom)}"${k.validUntil ? `,valid-before="${stamp(k.validUntil)}"` : ''} ${k.sshPublicKey}`,
      )
      .join('\n') + '\n'
  );
}
