import type { SigningKey } from './keys';
import { sshSignature } from './sshsig';

// A git commit object (as `git cat-file commit` prints it) rewritten and signed the way `git commit -S` with
// gpg.format=ssh signs: the signature covers the object without any signature header, and goes into a `gpgsig` header
// at the end of the headers, its lines after the first indented by one space (git's commit.c, do_sign_commit).

export interface CommitRewrite {
  /** The rewritten commit of each parent that was rewritten; other parents stay as they are. */
  parents: ReadonlyMap<string, string>;
  /** The new committer date: when it was signed, so it falls in the signing key's validity window. */
  committedAt: Date;
}

/**
 * Headers that hold a signature of the commit (SHA-1 and SHA-256 repositories): dropped, with their continuation lines.
 */
const SIGNATURE_HEADERS = new Set(['gpgsig', 'gpgsig-sha256']);

/** One SSH signature, armored as ssh-keygen writes it, and nothing else. */
const SSH_SIGNATURE = /^-----BEGIN SSH SIGNATURE-----\n[A-Za-z0-9+/=\n]+-----END SSH SIGNATURE-----\n?$/;

/** What kind of signature a header holds, named by its first line (as git chooses the program that checks it). */
function kindOf(signature: string): string {
  const first = signature.split('\n', 1)[0];
  if (/^-----BEGIN PGP (SIGNATURE|MESSAGE)-----$/.test(first)) return 'an OpenPGP signature';
  if (first === '-----BEGIN SIGNED MESSAGE-----') return 'an X.509 signature';
  if (first === '-----BEGIN SSH SIGNATURE-----') return 'an SSH signature with something besides it';
  return `a signature of no kind git knows (${JSON.stringify(first.slice(0, 40))})`;
}

/**
 * Why the commit object (as `git cat-file commit` prints it) is not signed with exactly one SSH signature, or
 * undefined when it is. Each signature header is read as git reads it: all its lines, a repeated header's appended.
 */
export function notSshSigned(raw: string): string | undefined {
  const end = raw.indexOf('\n\n');
  const signatures = new Map<string, string>();
  let current: string | undefined;
  for (const line of (end < 0 ? raw : raw.slice(0, end)).split('\n')) {
    if (line.startsWith(' ')) {
      if (current) signatures.set(current, `${signatures.get(current)}\n${line.slice(1)}`);
      continue;
    }
    const space = line.indexOf(' ');
    current = SIGNATURE_HEADERS.has(line.slice(0, space)) ? line.slice(0, space) : undefined;
    if (current)
      signatures.set(
        current,
        signatures.has(current) ? `${signatures.get(current)}\n${line.slice(space + 1)}` : line.slice(space + 1),
      );
  }
  if (signatures.size === 0) return 'it is not signed';
  for (const [header, signature] of signatures)
    if (!SSH_SIGNATURE.test(`${signature}\n`))
      return `its ${header} header holds ${kindOf(signature)}, not one SSH signature`;
  return undefined;
}

export function signCommitObject(
  raw: string,
  rewrite: CommitRewrite,
  key: Pick<SigningKey, 'privateKey' | 'publicKeyPem'>,
): string {
  const end = raw.indexOf('\n\n');
  const headerText = end < 0 ? raw : raw.slice(0, end + 1);
  const body = end < 0 ? '' : raw.slice(end + 1);
  const seconds = Math.floor(rewrite.committedAt.getTime() / 1000);
  const headers: string[] = [];
  let dropping = false;
  for (const line of headerText.split('\n').slice(0, -1)) {
    if (line.startsWith(' ')) {
      if (!dropping) headers.push(line);
      continue;
    }
    const space = line.indexOf(' ');
    const [name, value] = space < 0 ? [line, ''] : [line.slice(0, space), line.slice(space + 1)];
    dropping = SIGNATURE_HEADERS.has(name);
    if (dropping) continue;
    if (name === 'parent') headers.push(`parent ${rewrite.parents.get(value) ?? value}`);
    else if (name === 'committer') headers.push(`committer ${value.replace(/ \d+ [+-]\d{4}$/, '')} ${seconds} +0000`);
    else headers.push(line);
  }
  const unsigned = headers.map((h) => `${h}\n`).join('');
  const signature = sshSignature(unsigned + body, key)
    .trimEnd()
    .split('\n')
    .join('\n ');
  return `${unsigned}gpgsig ${signature}\n${body}`;
}
