import { existsSync, readFileSync, statSync } from 'node:fs';
import { sha256, verifyBundle, type TrustedKeys } from '../proof/bundle';
import { openCampaignProof, type CampaignProofRepo } from '../proof/campaign';
import { type ApiClient, CliError } from './client';

// `nightshift verify CAMPAIGN-PROOF.json` and `nightshift verify --campaign ID` (docs/campaigns.md, "The campaign's
// proof"): the campaign's signed statement, then each run proof it names, fetched from the server by its digest.

/** The campaign's proof and each run proof it names: a line per repo, or a CliError naming the first mismatch. */
export async function verifyCampaignProof(api: ApiClient, envelope: Buffer, keys: TrustedKeys): Promise<string[]> {
  const opened = openCampaignProof(envelope, keys);
  if (!opened.ok) throw new CliError(`verification failed: ${opened.problem}`, 1);
  const { predicate } = opened.statement;
  const lines = [
    `verified: campaign ${predicate.campaignId} (${predicate.title}), ${predicate.status}, ${predicate.repos.length} repos, signed by ${opened.keyId}`,
  ];
  const width = Math.max(...predicate.repos.map((r) => r.repo.length));
  for (const repo of predicate.repos) {
    const head = `  ${repo.repo.padEnd(width)}  ${repo.state.padEnd(9)} #${repo.attempts}  ${repo.runId}`;
    lines.push(
      repo.proof ? `${head}  ${await verifyRunProof(api, repo, repo.proof.sha256, keys)}` : `${head}  no proof`,
    );
  }
  return lines;
}

/** The run proof a repo names: the one its digest says, signed, of its run, ending on the commit listed. */
async function verifyRunProof(api: ApiClient, repo: CampaignProofRepo, digest: string, keys: TrustedKeys) {
  const fail = (problem: string) => new CliError(`verification failed: repo ${repo.repo}: ${problem}`, 1);
  const bundle = await api.request('GET', `/v1/proofs/${digest}`).then(
    (r) => r.bytes,
    (err: CliError) => {
      throw new CliError(
        `verification failed: repo ${repo.repo}: its run proof sha256:${digest} cannot be read: ${err.message}`,
        err.unreachable ? err.exitCode : 1,
      );
    },
  );
  if (sha256(bundle) !== digest) throw fail(`the run proof served is not sha256:${digest}`);
  const verified = await verifyBundle(bundle, keys);
  if (!verified.ok) throw fail(`its run proof sha256:${digest}: ${verified.problem}`);
  if (verified.runId !== repo.runId) throw fail(`its run proof is of run ${verified.runId}, not ${repo.runId}`);
  const finalCommit = verified.subject.find((s) => s.name === 'final-commit')?.digest.gitCommit;
  if (finalCommit !== repo.commit)
    throw fail(`its run proof ends on commit ${finalCommit ?? '(none)'}, the campaign lists ${repo.commit ?? 'none'}`);
  return `commit ${finalCommit}  proof sha256:${digest} ok`;
}

/** The file's bytes if it is a campaign's proof (a DSSE envelope, JSON), not a run's bundle (.tar.gz, a directory). */
export function campaignProofAt(file: string): Buffer | undefined {
  if (!existsSync(file) || !statSync(file).isFile()) return undefined;
  const bytes = readFileSync(file);
  return /^\s*\{/.test(bytes.subarray(0, 64).toString('utf8')) ? bytes : undefined;
}
