import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { verifyBundle } from '../proof/bundle';
import type { PublicKeyEntry } from '../proof/keys';
import { type ApiClient, CliError } from './client';

// `nightshift verify --commit REPO SHA`: a commit in a local repo and the run that made it, checked together. The
// commit's Nightshift-Run trailer names the run; git verify-commit checks the commit's signature against the server's
// allowed_signers; the run's proof, checked against the server's keys, must name this commit as the run's final one
// (or a descendant of it, carrying the same trailer).

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * git in the user's repo. The signature is checked by ssh-keygen itself, whatever program the repo's config names,
 * and no fsmonitor the repo's config names runs.
 */
function gitIn(repo: string, args: string[]): Promise<GitResult> {
  const pinned = ['-c', 'gpg.ssh.program=ssh-keygen', '-c', 'core.fsmonitor=false'];
  return new Promise((resolve) => {
    execFile('git', ['-C', repo, ...pinned, ...args], { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LANG: 'C', LC_ALL: 'C' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const short = (sha: string) => sha.slice(0, 12);
const lastLines = (text: string) => text.trim().split('\n').filter(Boolean).slice(-2).join('; ');

/** Checks the commit `rev` in `repo` and the run that made it; returns the summary, or throws a CliError naming the first problem. */
export async function verifyCommit(api: ApiClient, repo: string, rev: string): Promise<string> {
  if (!existsSync(repo)) throw new CliError(`no such repo: ${repo}`, 2);
  const resolved = await gitIn(repo, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`]);
  if (resolved.code !== 0) throw new CliError(`${rev} is not a commit in ${repo}`, 2);
  const sha = resolved.stdout.trim();
  const runId = await runOf(repo, sha);
  const signer = await checkSignature(api, repo, sha);
  const { finalCommit, keyId } = await provenRun(api, runId);
  return `verified: commit ${short(sha)} is ${await relation(repo, sha, runId, finalCommit)}; ${signer}; its proof is signed by ${keyId}`;
}

/** The run the commit's `Nightshift-Run:` trailer names: exactly one. */
async function runOf(repo: string, sha: string): Promise<string> {
  const trailers = await gitIn(repo, ['log', '-1', '--format=%(trailers:key=Nightshift-Run,valueonly)', sha]);
  const runs = [...new Set(trailers.stdout.split('\n').map((l) => l.trim()).filter(Boolean))];
  if (runs.length === 0) throw new CliError(`commit ${short(sha)} has no Nightshift-Run trailer: no run claims it`, 1);
  if (runs.length > 1) throw new CliError(`commit ${short(sha)} names more than one run (Nightshift-Run: ${runs.join(', ')})`, 1);
  return runs[0];
}

/** git verify-commit against the server's allowed_signers (every key it signs or signed with, each in its window). */
async function checkSignature(api: ApiClient, repo: string, sha: string): Promise<string> {
  const allowed = (await api.request('GET', '/v1/keys/allowed_signers')).text;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-verify-'));
  try {
    const file = path.join(dir, 'allowed_signers');
    writeFileSync(file, allowed);
    const r = await gitIn(repo, ['-c', `gpg.ssh.allowedSignersFile=${file}`, 'verify-commit', sha]);
    if (r.code !== 0) throw new CliError(`commit ${short(sha)}: git verify-commit fails with the server's allowed signers: ${lastLines(r.stderr) || 'the commit is not signed'}`, 1);
    const good = r.stderr.match(/Good "git" signature for (\S+) with (\S+) key (\S+)/);
    return good ? `signed by ${good[1]} (${good[2]} key ${good[3]})` : 'its signature verifies';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The run's proof from the server, checked against each of the server's keys: the final commit it names, and the key. */
async function provenRun(api: ApiClient, runId: string): Promise<{ finalCommit: string; keyId: string }> {
  const bundle = (await api.request('GET', `/v1/runs/${encodeURIComponent(runId)}/proof`)).bytes;
  const { keys } = await api.json<{ keys: PublicKeyEntry[] }>('GET', '/v1/keys');
  const verified = verifyBundle(bundle, keys);
  if (!verified.ok) throw new CliError(`the proof of run ${runId} does not verify: ${verified.problem}`, 1);
  const finalCommit = verified.subject.find((s) => s.name === 'final-commit')?.digest.gitCommit;
  if (!finalCommit) throw new CliError(`the proof of run ${runId} names no final commit`, 1);
  return { finalCommit, keyId: verified.keyId };
}

/** How the commit belongs to the run: its final commit, or an earlier one of its chain; anything else is a failure. */
async function relation(repo: string, sha: string, runId: string, finalCommit: string): Promise<string> {
  if (sha === finalCommit) return `run ${runId}'s final commit`;
  const known = (await gitIn(repo, ['cat-file', '-e', `${finalCommit}^{commit}`])).code === 0;
  if (known && (await gitIn(repo, ['merge-base', '--is-ancestor', sha, finalCommit])).code === 0) {
    return `an earlier commit of run ${runId} (its final commit is ${short(finalCommit)})`;
  }
  throw new CliError(`commit ${short(sha)} is not run ${runId}'s: its proof names final commit ${short(finalCommit)}${known ? '' : `, which is not in ${repo}`}`, 1);
}
