import { generateKeyPairSync } from 'node:crypto';
import { provenanceOf, signDecision } from '../../proof/decisions';
import type { Decision } from '../../contracts/run';

// A forge's decision (a review checked by a worker) is signed with its channel: it cannot pass for an API decision,
// an API decision cannot pass for a forge user's, and a signal claiming the forge without the server's key is only
// a claim.

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const key = { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), keyId: 'test' };
const base = {
  kind: 'approve' as const,
  by: 'gitea:bob',
  comment: 'Ship it.',
  iteration: 2,
  at: '2026-12-01T00:00:00.000Z',
};
const judged = (d: Decision) => provenanceOf([publicKey], 'ns-run', d);

test('a forge decision signed with its channel is channel forge, verified', () => {
  const sig = signDecision(key, 'ns-run', { ...base, via: 'forge' });
  expect(judged({ ...base, via: 'forge', sig })).toMatchObject({ channel: 'forge', verified: true, by: 'gitea:bob' });
  expect(judged({ ...base, via: 'forge', sig })).not.toHaveProperty('via');
});

test('a forge signature with the channel dropped (to pass as the API) does not verify; nor an API signature claiming the forge', () => {
  const forgeSig = signDecision(key, 'ns-run', { ...base, via: 'forge' });
  expect(judged({ ...base, sig: forgeSig })).toMatchObject({ channel: 'temporal', verified: false });
  const apiSig = signDecision(key, 'ns-run', base);
  expect(judged({ ...base, sig: apiSig })).toMatchObject({ channel: 'api', verified: true });
  expect(judged({ ...base, via: 'forge', sig: apiSig })).toMatchObject({ channel: 'temporal', verified: false });
});

test("a signal claiming the forge with no signature, or another key's, is unverified", () => {
  expect(judged({ ...base, via: 'forge' })).toMatchObject({ channel: 'temporal', verified: false });
  const other = generateKeyPairSync('ed25519');
  const otherSig = signDecision({ ...key, privateKey: other.privateKey }, 'ns-run', { ...base, via: 'forge' });
  expect(judged({ ...base, via: 'forge', sig: otherSig })).toMatchObject({ channel: 'temporal', verified: false });
});

test('a budget raise signs its amounts: the same signature on a larger raise, or on an approval, does not verify', () => {
  const raise = { ...base, by: 'carol', kind: 'raiseBudget' as const, raise: { costUsd: 5 } };
  const sig = signDecision(key, 'ns-run', raise);
  expect(judged({ ...raise, sig })).toMatchObject({ channel: 'api', verified: true, raise: { costUsd: 5 } });
  expect(judged({ ...raise, raise: { costUsd: 500 }, sig })).toMatchObject({ channel: 'temporal', verified: false });
  expect(judged({ ...raise, raise: { costUsd: 5, tokens: 1e6 }, sig })).toMatchObject({ verified: false });
  expect(judged({ ...raise, kind: 'approve', sig })).toMatchObject({ verified: false });
});
