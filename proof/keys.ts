import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export interface SigningKey {
  privateKey: KeyObject;
  publicKeyPem: string;
  keyId: string;
}

/** The key id: sha256 of the public key's DER (SPKI), so anyone holding the public key can compute it. */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/** The server's ed25519 signing key under `$NIGHTSHIFT_HOME/keys`, made at the server's first start (private key mode 0600). */
export function ensureSigningKey(home: string): SigningKey {
  const dir = path.join(home, 'keys');
  const privateFile = path.join(dir, 'signing.key');
  const publicFile = path.join(dir, 'signing.pub');
  if (!existsSync(privateFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    // wx: two workers starting at once must not overwrite each other's key.
    try {
      writeFileSync(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
      writeFileSync(publicFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const privateKey = createPrivateKey(readFileSync(privateFile));
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  if (!existsSync(publicFile)) writeFileSync(publicFile, publicKeyPem);
  return { privateKey, publicKeyPem, keyId: keyIdOf(publicKeyPem) };
}
