import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { type Decision, type DecisionRecord, type RunState, DECISION_SIG_MAX } from '../contracts/run';
import type { SigningKey } from './keys';

/**
 * Decisions come in as Temporal signals, and anyone who can reach Temporal can send one with any `by`. The API
 * signs the decisions it sends with the server's key; code that reads a decision and holds the public key judges
 * how it came: `api` (its `by` is the token's name) when the signature checks out, else `temporal` (its `by` only
 * claimed). The workflow records the signature as it came and never judges it (it has no key, and must not).
 */

type Signed = Pick<Decision, 'kind' | 'by' | 'comment' | 'iteration' | 'via' | 'raise'>;

/**
 * What the API signs: the run, the kind, who, what, and the iteration it decides, so a signature cannot be moved
 * to another run, another kind or a later iteration of the same run (a replayed request for changes, say).
 */
export function decisionText(runId: string, d: Signed): Buffer {
  // A forge's decision signs its channel too, so an API decision cannot be passed off as a forge user's, or back.
  // A budget raise signs its amounts, so a signed raise of $5 cannot be replayed as one of $500.
  const raise = d.kind === 'raiseBudget' ? [d.raise?.tokens ?? null, d.raise?.costUsd ?? null] : [];
  const text =
    d.via === 'forge'
      ? ['nightshift-decision/2', runId, d.kind, d.by, d.comment, d.iteration ?? null, d.via, ...raise]
      : ['nightshift-decision/1', runId, d.kind, d.by, d.comment, d.iteration ?? null, ...raise];
  return Buffer.from(JSON.stringify(text));
}

export function signDecision(key: SigningKey, runId: string, d: Signed): string {
  return sign(null, decisionText(runId, d), key.privateKey).toString('base64');
}

/**
 * How a recorded decision came: through the API (signed for this run by one of `publicKeys`, the server's keys
 * before and after any rotation), or by some other Temporal client.
 */
export function provenanceOf(publicKeys: KeyObject[], runId: string, d: Decision): DecisionRecord {
  const { sig, ...decision } = d;
  const verified =
    typeof sig === 'string' && sig.length <= DECISION_SIG_MAX && publicKeys.some((key) => signedBy(key, runId, d, sig));
  const { via, ...shown } = decision;
  return { ...shown, channel: verified ? (via === 'forge' ? 'forge' : 'api') : 'temporal', verified };
}

function signedBy(publicKey: KeyObject, runId: string, d: Decision, sig: string): boolean {
  try {
    return verify(null, decisionText(runId, d), publicKey, Buffer.from(sig, 'base64'));
  } catch {
    return false; // not a signature at all
  }
}

/** The run with each decision's provenance in place of its signature: what the API serves and the proof records. */
export function withProvenance<T extends Pick<RunState, 'id' | 'decisions'>>(
  state: T,
  publicKeyPems: string[],
): Omit<T, 'decisions'> & { decisions: DecisionRecord[] } {
  const keys = publicKeyPems.map((pem) => createPublicKey(pem));
  return { ...state, decisions: (state.decisions ?? []).map((d) => provenanceOf(keys, state.id, d)) };
}
