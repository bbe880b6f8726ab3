import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { notSshSigned, signCommitObject } from '../../proof/signedCommit';
import { sshSignature } from '../../proof/sshsig';

// Commit signing in Node, against what OpenSSH and git write. Ed25519 signatures are deterministic, so the same key
// and message give the same bytes: the expected texts below were made with this (test-only) key by
// `ssh-keygen -Y sign -n git` (OpenSSH 9.2) and by `git commit -S` with gpg.format=ssh (git 2.39). That git and
// ssh-keygen accept the server's signatures is pinned by test/signing.test.ts, with the real programs.

const TEST_KEY_PEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIIg6EU3xP2TnFJR97/nhzghVc/vpA20wi+qm7qCcgUdd
-----END PRIVATE KEY-----
`;
const privateKey = createPrivateKey(TEST_KEY_PEM);
const key = {
  privateKey,
  publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
};

test('a signature is byte for byte what `ssh-keygen -Y sign -n git` writes for the same key and message', () => {
  const message =
    'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nhello\n';
  expect(sshSignature(message, key)).toBe(`-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgdzjyrnDiVvD5F/f27JOpGIowDQ
n2z6II39oQPgyEeQ0AAAADZ2l0AAAAAAAAAAZzaGE1MTIAAABTAAAAC3NzaC1lZDI1NTE5
AAAAQDMH+zQtrYjw2jv9BO60ShmfXAIFEZY90hjfmwBUJSxYDv1QKWUcXcX/oGW4v6EDNG
PMh7tOuaYwgsVzfh8S0A8=
-----END SSH SIGNATURE-----
`);
  // The namespace is signed: the same message in another one is another signature.
  expect(sshSignature(message, key, 'file')).not.toBe(sshSignature(message, key));
});

const UNSIGNED = `tree 2a2c4e8375eeb8702a9949238388da69127748d5
parent 16e5a686b9e78fb3e30c9765c3375b7dd3340691
author Nightshift <nightshift@localhost> 1700000000 +0100
committer Nightshift <nightshift@localhost> 1700000500 +0000

Set the value (iteration 1)

Nightshift-Run: ns-abc
`;

/** UNSIGNED as `git commit -S` signed it with the test key (committer date unchanged). */
const SIGNED_BY_GIT = `tree 2a2c4e8375eeb8702a9949238388da69127748d5
parent 16e5a686b9e78fb3e30c9765c3375b7dd3340691
author Nightshift <nightshift@localhost> 1700000000 +0100
committer Nightshift <nightshift@localhost> 1700000500 +0000
gpgsig -----BEGIN SSH SIGNATURE-----
 U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgdzjyrnDiVvD5F/f27JOpGIowDQ
 n2z6II39oQPgyEeQ0AAAADZ2l0AAAAAAAAAAZzaGE1MTIAAABTAAAAC3NzaC1lZDI1NTE5
 AAAAQJphQa47aq/rrtBXceqyq4+6h0RvsDNUu2qWncBxzwsT04QHcOkp7lOskjPQCvaFNy
 IQgLoD3y6x+o3ltML4kgI=
 -----END SSH SIGNATURE-----

Set the value (iteration 1)

Nightshift-Run: ns-abc
`;

const at = (seconds: number) => new Date(seconds * 1000);

test('a commit object signed as git signs it: the same object, header and indentation as `git commit -S`', () => {
  expect(signCommitObject(UNSIGNED, { parents: new Map(), committedAt: at(1700000500) }, key)).toBe(SIGNED_BY_GIT);
});

test('signing again replaces the old signature rather than adding one', () => {
  expect(signCommitObject(SIGNED_BY_GIT, { parents: new Map(), committedAt: at(1700000500) }, key)).toBe(SIGNED_BY_GIT);
  const other = generateKeyPairSync('ed25519');
  const resigned = signCommitObject(
    SIGNED_BY_GIT,
    { parents: new Map(), committedAt: at(1700000500) },
    { privateKey: other.privateKey, publicKeyPem: other.publicKey.export({ type: 'spki', format: 'pem' }).toString() },
  );
  expect(resigned.match(/^gpgsig /gm)).toHaveLength(1);
  expect(resigned).not.toBe(SIGNED_BY_GIT);
});

test('parents are mapped to their rewritten commits, the committer date is the signing time (UTC); the rest stays', () => {
  const parent = '16e5a686b9e78fb3e30c9765c3375b7dd3340691';
  const rewritten = 'a'.repeat(40);
  const signed = signCommitObject(
    UNSIGNED,
    { parents: new Map([[parent, rewritten]]), committedAt: new Date('2026-12-01T05:20:11.900Z') },
    key,
  );
  const headers = signed.slice(0, signed.indexOf('gpgsig '));
  expect(headers).toBe(`tree 2a2c4e8375eeb8702a9949238388da69127748d5
parent ${rewritten}
author Nightshift <nightshift@localhost> 1700000000 +0100
committer Nightshift <nightshift@localhost> 1796102411 +0000
`);
  expect(signed.endsWith('\n\nSet the value (iteration 1)\n\nNightshift-Run: ns-abc\n')).toBe(true);
  // What is signed is the object without its signature header.
  const signature = signed.slice(signed.indexOf('gpgsig ') + 7, signed.indexOf('\n\nSet')).replace(/\n /g, '\n') + '\n';
  expect(signature).toBe(sshSignature(headers + signed.slice(signed.indexOf('\n\nSet') + 1), key));
});

describe('notSshSigned: only one SSH signature is a signature the server may have made', () => {
  const withHeader = (header: string) => UNSIGNED.replace('+0000\n', `+0000\n${header}`);
  const PGP = 'gpgsig -----BEGIN PGP SIGNATURE-----\n \n iHUEABYKAB0WIQQ=\n -----END PGP SIGNATURE-----\n';

  test('the server’s signature, as git writes it: none found wanting', () => {
    expect(notSshSigned(SIGNED_BY_GIT)).toBeUndefined();
  });

  test.each([
    ['no signature', UNSIGNED, 'it is not signed'],
    ['OpenPGP', withHeader(PGP), 'its gpgsig header holds an OpenPGP signature, not one SSH signature'],
    [
      'X.509 (a check for "PGP" misses it)',
      withHeader(
        'gpgsig -----BEGIN SIGNED MESSAGE-----\n MIAGCSqGSIb3DQEHAqCAMIACAQEx\n -----END SIGNED MESSAGE-----\n',
      ),
      'its gpgsig header holds an X.509 signature, not one SSH signature',
    ],
    // git joins a repeated header's lines into one signature: the SSH block first, then the other.
    [
      'the SSH signature, and an OpenPGP one in a second gpgsig header',
      SIGNED_BY_GIT.replace('-----END SSH SIGNATURE-----\n', `-----END SSH SIGNATURE-----\n${PGP}`),
      'its gpgsig header holds an SSH signature with something besides it, not one SSH signature',
    ],
    [
      'the SSH signature, and OpenPGP under the SHA-256 header',
      SIGNED_BY_GIT.replace(
        '-----END SSH SIGNATURE-----\n',
        `-----END SSH SIGNATURE-----\n${PGP.replace('gpgsig', 'gpgsig-sha256')}`,
      ),
      'its gpgsig-sha256 header holds an OpenPGP signature, not one SSH signature',
    ],
    [
      'an indented first line',
      withHeader('gpgsig  -----BEGIN SSH SIGNATURE-----\n AAAA\n -----END SSH SIGNATURE-----\n'),
      'its gpgsig header holds a signature of no kind git knows (" -----BEGIN SSH SIGNATURE-----"), not one SSH signature',
    ],
  ])('%s: refused, naming why', (_, raw, why) => {
    expect(notSshSigned(raw)).toBe(why);
  });

  test('a signature header in the message is only text', () => {
    expect(notSshSigned(`${SIGNED_BY_GIT}\n${PGP}`)).toBeUndefined();
  });
});
