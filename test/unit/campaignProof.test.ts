import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { signStatement, type DsseEnvelope } from '../../proof/bundle';
import { campaignStatement, openCampaignProof, CAMPAIGN_PREDICATE, type CampaignPredicate } from '../../proof/campaign';
import { keyIdOf, type PublicKeyEntry, type SigningKey } from '../../proof/keys';
import type { CampaignProofInput } from '../../contracts/campaign';

// The campaign's proof (proof/campaign.ts): what its statement lists, and that any change to it after signing, a key
// not the server's, or a key out of its window is refused. Its run proofs are checked end to end (test/campaigns.test).

function newKey(): SigningKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicKeyPem, keyId: keyIdOf(publicKeyPem) };
}
const key = newKey();
const entry = (k: SigningKey, validFrom: string, validUntil?: string): PublicKeyEntry => ({
  keyid: k.keyId,
  algorithm: 'ed25519',
  publicKeyPem: k.publicKeyPem,
  sshPublicKey: '',
  validFrom,
  ...(validUntil ? { validUntil } : {}),
});

const COMMIT = 'c'.repeat(40);
const PROOF = 'e'.repeat(64);
const ended: CampaignProofInput = {
  specDigest: 'd'.repeat(64),
  campaign: {
    id: 'nc-000000000001',
    title: 'Set every value to two',
    status: 'partial',
    createdAt: '2026-12-01T10:00:00.000Z',
    repos: [
      {
        repo: 'one',
        runId: 'nc-000000000001-one',
        state: 'succeeded',
        attempts: 2,
        status: 'succeeded',
        commit: COMMIT,
        proofId: PROOF,
        branch: 'nightshift/one',
        startedAt: '2026-12-01T10:00:01.000Z',
      },
      { repo: 'two', runId: 'nc-000000000001-two', state: 'failed', attempts: 1, reason: 'checks: Check "value"' },
    ],
    decisions: [{ kind: 'retry', by: 'carol', comment: 'fixture fixed', at: '2026-12-01T10:05:00.000Z', sig: 'x' }],
  },
};
const signed = (k = key, finishedOn = '2026-12-01T11:00:00.000Z') =>
  signStatement(campaignStatement(ended, { serverUrl: 'https://ns.example/', finishedOn }), k);

/** The envelope with its statement's predicate changed as `edit` says, its signature left as it was. */
function tampered(envelope: Buffer, edit: (p: CampaignPredicate) => void): Buffer {
  const dsse = JSON.parse(envelope.toString('utf8')) as DsseEnvelope;
  const statement = JSON.parse(Buffer.from(dsse.payload, 'base64').toString('utf8'));
  edit(statement.predicate);
  return Buffer.from(JSON.stringify({ ...dsse, payload: Buffer.from(JSON.stringify(statement)).toString('base64') }));
}

test("the statement lists each repo's run, end state, attempts, final commit and run proof; the decisions; the spec", () => {
  const opened = openCampaignProof(signed(), [entry(key, '2026-01-01T00:00:00.000Z')]);
  if (!opened.ok) throw new Error(opened.problem);
  expect(opened.keyId).toBe(key.keyId);
  expect(opened.statement.predicateType).toBe(CAMPAIGN_PREDICATE);
  expect(opened.statement.subject).toEqual([
    { name: 'campaign-spec', digest: { sha256: 'd'.repeat(64) } },
    { name: 'nc-000000000001-one', digest: { gitCommit: COMMIT } },
  ]);
  expect(opened.statement.predicate).toEqual({
    campaignId: 'nc-000000000001',
    title: 'Set every value to two',
    status: 'partial',
    spec: { digest: { sha256: 'd'.repeat(64) } },
    builder: { id: 'https://ns.example/#/builder' },
    startedOn: '2026-12-01T10:00:00.000Z',
    finishedOn: '2026-12-01T11:00:00.000Z',
    repos: [
      {
        repo: 'one',
        runId: 'nc-000000000001-one',
        state: 'succeeded',
        attempts: 2,
        commit: COMMIT,
        proof: { sha256: PROOF },
        branch: 'nightshift/one',
      },
      { repo: 'two', runId: 'nc-000000000001-two', state: 'failed', attempts: 1, reason: 'checks: Check "value"' },
    ],
    // Who asked, as recorded; the signal's own signature is not copied.
    decisions: [{ kind: 'retry', by: 'carol', comment: 'fixture fixed', at: '2026-12-01T10:05:00.000Z' }],
  });
});

test('a statement changed after signing is refused: a failed repo made succeeded, a run proof swapped, a commit moved', () => {
  const edits: ((p: CampaignPredicate) => void)[] = [
    (p) => (p.repos[1].state = 'succeeded'),
    (p) => (p.repos[0].proof = { sha256: 'f'.repeat(64) }),
    (p) => (p.repos[0].commit = 'a'.repeat(40)),
    (p) => (p.status = 'succeeded'),
  ];
  for (const edit of edits)
    expect(openCampaignProof(tampered(signed(), edit), key.publicKeyPem)).toEqual({
      ok: false,
      problem: 'the campaign proof: the signature does not match the statement',
    });
  // The same envelope untouched opens.
  expect(
    openCampaignProof(
      tampered(signed(), () => undefined),
      key.publicKeyPem,
    ).ok,
  ).toBe(true);
});

test("a key not the server's, or a retired one after its window, is refused; a statement of another kind is not a campaign proof", () => {
  const other = newKey();
  expect(openCampaignProof(signed(other), key.publicKeyPem)).toEqual({
    ok: false,
    problem: `the campaign proof is not signed by key ${key.keyId} (signed by ${other.keyId})`,
  });
  const retired = [entry(key, '2026-01-01T00:00:00.000Z', '2026-12-01T10:30:00.000Z')];
  expect(openCampaignProof(signed(), retired)).toMatchObject({
    ok: false,
    problem: expect.stringContaining(`key ${key.keyId} was not in use at 2026-12-01T11:00:00.000Z`),
  });
  expect(openCampaignProof(signed(key, '2026-12-01T10:20:00.000Z'), retired).ok).toBe(true);
  const otherStatement = { ...campaignStatement(ended, { serverUrl: 'x', finishedOn: 'y' }), predicateType: 'other' };
  expect(openCampaignProof(signStatement(otherStatement, key), key.publicKeyPem)).toEqual({
    ok: false,
    problem: 'not a campaign proof (predicate other)',
  });
});
