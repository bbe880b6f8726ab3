import { existsSync } from 'node:fs';
import { verifyBundle } from '../proof/bundle';
import type { PublicKeyEntry } from '../proof/keys';
import { commitSignature, gitIn } from '../proof/commitSignature';
import { type ApiClient, CliError } from './client';

// `nightshift verify --commit REPO SHA`: a commit in a local repo and the run that made it, checked together. The
// commit's Nightshift-Run trailer names the run; its one signature is an SSH signature, which git verify-commit checks
// against the server's allowed_signers (an OpenPGP or X.509 one would be checked against whatever keys the verifier's
// gpg trusts); the run's proof, checked against the server's keys, must have this commit in its range: after the
// run's base commit, up to its final commit. A trailer and a signature can be on any commit; the range is what the
// proof vouches for.

const short = (sha: string) => sha.slice(0, 12);

/**
 * Checks the commit `rev` in `repo` and the run that made it; returns the summary, or throws a CliError naming the
 * first problem.
 */
export async function verifyCommit(api: ApiClient, repo: string, rev: string): Promise<string> {
  if (!existsSync(repo)) throw new CliError(`no such repo: ${repo}`, 2);
  const resolved = await gitIn(repo, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`]);
  if (resolved.code !== 0) throw new CliError(`${rev} is not a commit in ${repo}`, 2);
  const sha = resolved.stdout.trim();
  const runId = await runOf(repo, sha);
  const signer = await checkSignature(api, repo, sha);
  const proven = await provenRun(api, runId);
  return `verified: commit ${short(sha)} is ${await relation(repo, sha, runId, proven)}; ${signer}; its proof is signed by ${proven.keyId}`;
}

/** The run the commit's `Nightshift-Run:` trailer names: exactly one. */
async function runOf(repo: string, sha: string): Promise<string> {
  const trailers = await gitIn(repo, ['log', '-1', '--format=%(trailers:key=Nightshift-Run,valueonly)', sha]);
  const runs = [
    ...new Set(
      trailers.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    ),
  ];
  if (runs.length === 0) throw new CliError(`commit ${short(sha)} has no Nightshift-Run trailer: no run claims it`, 1);
  if (runs.length > 1)
    throw new CliError(`commit ${short(sha)} names more than one run (Nightshift-Run: ${runs.join(', ')})`, 1);
  return runs[0];
}

/**
 * One SSH signature, then git verify-commit against the server's allowed_signers (every key it signs or signed with,
 * each in its window). allowed_signers governs SSH signatures only: git hands any other kind to gpg or gpgsm, which
 * accept any key the verifier's keyring holds.
 */
async function checkSignature(api: ApiClient, repo: string, sha: string): Promise<string> {
  const allowed = (await api.request('GET', '/v1/keys/allowed_signers')).text;
  const checked = await commitSignature(repo, sha, allowed);
  if ('problem' in checked)
    throw new CliError(
      checked.unsigned
        ? `commit ${short(sha)} is not signed by the server: ${checked.problem}`
        : `commit ${short(sha)}: ${checked.problem}`,
      1,
    );
  return checked.signer;
}

interface ProvenRun {
  finalCommit: string;
  /** The commit the run's commits stand on (after a rebase, the base's tip it was rebased onto). */
  baseCommit?: string;
  keyId: string;
}

/** The run's proof from the server, checked against each of the server's keys: the commits it names, and the key. */
async function provenRun(api: ApiClient, runId: string): Promise<ProvenRun> {
  const bundle = (await api.request('GET', `/v1/runs/${encodeURIComponent(runId)}/proof`)).bytes;
  const { keys } = await api.json<{ keys: PublicKeyEntry[] }>('GET', '/v1/keys');
  const verified = await verifyBundle(bundle, keys);
  if (!verified.ok) throw new CliError(`the proof of run ${runId} does not verify: ${verified.problem}`, 1);
  const finalCommit = verified.subject.find((s) => s.name === 'final-commit')?.digest.gitCommit;
  if (!finalCommit) throw new CliError(`the proof of run ${runId} names no final commit`, 1);
  return { finalCommit, baseCommit: verified.baseCommit, keyId: verified.keyId };
}

/** Exit code of `git merge-base --is-ancestor a b`: 0 yes, 1 no, anything else an error. */
const isAncestor = async (repo: string, a: string, b: string) =>
  (await gitIn(repo, ['merge-base', '--is-ancestor', a, b])).code;

/**
 * How the commit belongs to the run: its final commit, or an earlier one of its range (base..final, the commits the
 * server signed for it); anything else is a failure, naming why.
 */
async function relation(
  repo: string,
  sha: string,
  runId: string,
  { finalCommit, baseCommit }: ProvenRun,
): Promise<string> {
  if (sha === finalCommit) return `run ${runId}'s final commit`;
  const notRuns = `commit ${short(sha)} is not run ${runId}'s:`;
  const present = async (c: string) => (await gitIn(repo, ['cat-file', '-e', `${c}^{commit}`])).code === 0;
  if (!(await present(finalCommit)))
    throw new CliError(`${notRuns} its proof names final commit ${short(finalCommit)}, which is not in ${repo}`, 1);
  if ((await isAncestor(repo, sha, finalCommit)) !== 0)
    throw new CliError(`${notRuns} its proof names final commit ${short(finalCommit)}`, 1);
  if (!baseCommit)
    throw new CliError(
      `${notRuns} its proof names no base commit, so only its final commit ${short(finalCommit)} is the run's`,
      1,
    );
  if (!(await present(baseCommit)))
    throw new CliError(
      `${notRuns} its proof's base commit ${short(baseCommit)} is not in ${repo}, so the run's commits cannot be told from the base's`,
      1,
    );
  const belowBase = await isAncestor(repo, sha, baseCommit);
  if (belowBase === 0) {
    throw new CliError(
      `${notRuns} it is ${sha === baseCommit ? '' : 'under '}the run's base commit ${short(baseCommit)}, the commit its changes stand on; the run's commits are ${short(baseCommit)}..${short(finalCommit)}`,
      1,
    );
  }
  if (belowBase !== 1)
    throw new CliError(`${notRuns} git cannot tell whether it is under the run's base commit ${short(baseCommit)}`, 1);
  return `an earlier commit of run ${runId} (its commits are ${short(baseCommit)}..${short(finalCommit)})`;
}
