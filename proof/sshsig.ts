import { createHash, sign } from 'node:crypto';
import { sshPublicKeyBlob, sshString, type SigningKey } from './keys';

// SSH signatures (OpenSSH's PROTOCOL.sshsig), what `ssh-keygen -Y sign` makes and git's SSH signing uses, made here
// with Node's crypto: the key stays in this process, no ssh-keygen or key file is needed to sign.

const MAGIC = Buffer.from('SSHSIG');
const VERSION = 1;
const HASH = 'sha512';

/** The namespace git signs commits and tags in (`ssh-keygen -Y verify -n git`). */
export const GIT_NAMESPACE = 'git';

/** `message` signed with the ed25519 `key` in `namespace`, armored as `ssh-keygen -Y sign` writes it. */
export function sshSignature(
  message: Buffer | string,
  key: Pick<SigningKey, 'privateKey' | 'publicKeyPem'>,
  namespace = GIT_NAMESPACE,
): string {
  const digest = createHash(HASH).update(message).digest();
  const signed = Buffer.concat([MAGIC, sshString(namespace), sshString(''), sshString(HASH), sshString(digest)]);
  const signature = Buffer.concat([sshString('ssh-ed25519'), sshString(sign(null, signed, key.privateKey))]);
  const version = Buffer.alloc(4);
  version.writeUInt32BE(VERSION);
  const blob = Buffer.concat([
    MAGIC,
    version,
    sshString(sshPublicKeyBlob(key.publicKeyPem)),
    sshString(namespace),
    sshString(''),
    sshString(HASH),
    sshString(signature),
  ]);
  const lines = blob.toString('base64').match(/.{1,70}/g)!;
  return ['-----BEGIN SSH SIGNATURE-----', ...lines, '-----END SSH SIGNATURE-----', ''].join('\n');
}
