import type { CampaignProofInput, CampaignRepoState, CampaignStatus } from '../contracts/campaign';
import { asKeys, openEnvelope, type TrustedKeys } from './bundle';
import { STATEMENT_TYPE, type Statement } from './statements';

// The campaign's proof (docs/campaigns.md, "The campaign's proof"): one in-toto statement in a DSSE envelope, signed
// with the server's key as a run's proof is, listing each repo's run, end state, final commit and the digest of its
// run's proof. `nightshift verify` checks its signature, then each run proof it names.

export const CAMPAIGN_PREDICATE = 'https://nightshift.dev/campaign/v1';

/** One repo as the campaign's proof lists it. */
export interface CampaignProofRepo {
  repo: string;
  runId: string;
  state: CampaignRepoState;
  attempts: number;
  /** The run's final commit, as its proof names it (`final-commit`). */
  commit?: string;
  /** The run's proof bundle, by digest (`GET /v1/proofs/:digest`). */
  proof?: { sha256: string };
  branch?: string;
  pullRequest?: { number: number; url: string };
  reason?: string;
}

export interface CampaignPredicate {
  campaignId: string;
  title: string;
  status: CampaignStatus;
  spec: { digest: { sha256: string } };
  /** The server that signed it (its public URL). */
  builder: { id: string };
  startedOn: string;
  /** When it was signed: the signing key must have been in use then. */
  finishedOn: string;
  repos: CampaignProofRepo[];
  /** Batch decisions (with the runs each decided), retries and the cancel, with who asked, as the campaign recorded. */
  decisions: { kind: string; by: string; comment: string; at: string; runs?: string[] }[];
}

/** The campaign as it ended; its subject is the spec and every repo's final commit. */
export function campaignStatement(
  { campaign: state, specDigest }: CampaignProofInput,
  builder: { serverUrl: string; finishedOn: string },
): Statement<CampaignPredicate> {
  const repos = state.repos.map((r) => ({
    repo: r.repo,
    runId: r.runId,
    state: r.state,
    attempts: r.attempts,
    ...(r.commit ? { commit: r.commit } : {}),
    ...(r.proofId ? { proof: { sha256: r.proofId } } : {}),
    ...(r.branch ? { branch: r.branch } : {}),
    ...(r.pullRequest ? { pullRequest: r.pullRequest } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
  }));
  return {
    _type: STATEMENT_TYPE,
    subject: [
      { name: 'campaign-spec', digest: { sha256: specDigest } },
      ...repos.flatMap((r) => (r.commit ? [{ name: r.runId, digest: { gitCommit: r.commit } }] : [])),
    ],
    predicateType: CAMPAIGN_PREDICATE,
    predicate: {
      campaignId: state.id,
      title: state.title,
      status: state.status,
      spec: { digest: { sha256: specDigest } },
      builder: { id: `${builder.serverUrl.replace(/\/+$/, '')}/#/builder` },
      startedOn: state.createdAt,
      finishedOn: builder.finishedOn,
      repos,
      decisions: state.decisions.map((d) => ({
        kind: d.kind,
        by: d.by,
        comment: d.comment,
        at: d.at,
        ...(d.runs ? { runs: d.runs } : {}),
      })),
    },
  };
}

export type OpenedCampaignProof =
  { ok: true; statement: Statement<CampaignPredicate>; keyId: string } | { ok: false; problem: string };

/** The campaign's statement, if a server key signed it while in use (one key given alone is trusted at any time). */
export function openCampaignProof(envelope: Buffer, trusted: TrustedKeys): OpenedCampaignProof {
  const finishedOn =
    typeof trusted === 'string' ? undefined : (s: Statement) => (s.predicate as CampaignPredicate).finishedOn;
  const opened = openEnvelope('the campaign proof', envelope, asKeys(trusted), finishedOn);
  if (!opened.ok) return opened;
  if (opened.statement.predicateType !== CAMPAIGN_PREDICATE)
    return { ok: false, problem: `not a campaign proof (predicate ${opened.statement.predicateType})` };
  return { ok: true, statement: opened.statement as Statement<CampaignPredicate>, keyId: opened.keyid };
}
