import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SIGNATURE_PROGRAM_PINS } from '../git/git';
import { notSshSigned } from './signedCommit';

// A commit's signature, checked as `nightshift verify --commit` and the forge delivery's note both check it: one SSH
// signature, then git verify-commit against the server's allowed_signers (an OpenPGP or X.509 one would be checked
// against whatever keys the verifier's gpg trusts, so it never counts).

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * git in a repo that may be a stranger's: no signature program and no fsmonitor its config names runs (`-c` outranks
 * it), and the commit read is the object with the id given, never one a `refs/replace/` ref swaps in.
 */
export function gitIn(repo: string, args: string[]): Promise<GitResult> {
  const pinned = [...SIGNATURE_PROGRAM_PINS, '-c', 'core.fsmonitor=false'];
  const env = { ...process.env, LANG: 'C', LC_ALL: 'C', GIT_NO_REPLACE_OBJECTS: '1' };
  return new Promise((resolve) => {
    execFile('git', ['-C', repo, ...pinned, ...args], { maxBuffer: 16 * 1024 * 1024, env }, (err, stdout, stderr) => {
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
        stdout: String(stdout),
        stderr: String(stderr),
      });
    });
  });
}

const lastLines = (text: string) => text.trim().split('\n').filter(Boolean).slice(-2).join('; ');

/**
 * Who signed commit `sha` in `repo`, by `allowed` (git's allowed_signers); or why it is not the server's signature:
 * `unsigned` when it has no SSH signature at all, else git verify-commit's reason.
 */
export async function commitSignature(
  repo: string,
  sha: string,
  allowed: string,
): Promise<{ signer: string } | { problem: string; unsigned?: true }> {
  const raw = await gitIn(repo, ['cat-file', 'commit', sha]);
  const unsigned = raw.code === 0 ? notSshSigned(raw.stdout) : 'it cannot be read';
  if (unsigned) return { problem: `${unsigned} (only an SSH signature by the server's key counts)`, unsigned: true };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-verify-'));
  try {
    const file = path.join(dir, 'allowed_signers');
    writeFileSync(file, allowed);
    const r = await gitIn(repo, ['-c', `gpg.ssh.allowedSignersFile=${file}`, 'verify-commit', sha]);
    if (r.code !== 0)
      return {
        problem: `git verify-commit fails with the server's allowed signers: ${lastLines(r.stderr) || 'the commit is not signed'}`,
      };
    const good = r.stderr.match(/Good "git" signature for (\S+) with (\S+) key (\S+)/);
    return { signer: good ? `signed by ${good[1]} (${good[2]} key ${good[3]})` : 'its signature verifies' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
