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

/** Headers that hold a signature of the commit (SHA-1 and SHA-256 repositories): dropped, with their continuation lines. */
const SIGNATURE_HEADERS = new Set(['gpgsig', 'gpgsig-sha256']);

export function signCommitObject(raw: string, rewrite: CommitRewrite, key: Pick<SigningKey, 'privateKey' | 'publicKeyPem'>): string {
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
  const signature = sshSignature(unsigned + body, key).trimEnd().split('\n').join('\n ');
  return `${unsigned}gpgsig ${signature}\n${body}`;
}
