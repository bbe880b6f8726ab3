import { createHash, createPublicKey, sign, verify } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { packTarGz, unpackTarGz } from './tar';
import { keyIdOf, type SigningKey } from './keys';

// The proof bundle (docs/reference.md, "Proof"): the run's evidence as files, and `attestation.json`, an in-toto Statement v1 over
// them in a DSSE envelope signed with the server's ed25519 key. Anyone with the public key can check it offline.

const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
const PREDICATE_TYPE = 'https://nightshift.dev/proof/v1';
const PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const ATTESTATION = 'attestation.json';

export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

export interface Statement {
  _type: string;
  subject: { name: string; digest: Record<string, string> }[];
  predicateType: string;
  predicate: { runId: string; files: Record<string, string> };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** DSSE's pre-authentication encoding: what is signed, binding the payload to its type. */
function pae(payloadType: string, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.length} `), payload]);
}

/** The bundle: the files as given, plus the signed attestation over all of them and the final commit. */
export function buildBundle(runId: string, finalCommit: string | undefined, files: Map<string, Buffer>, key: SigningKey): Buffer {
  const digests = Object.fromEntries([...files].map(([name, content]) => [name, sha256(content)]));
  const subject = [
    ...(finalCommit ? [{ name: 'final-commit', digest: { gitCommit: finalCommit } }] : []),
    ...['manifest.json', 'diff.patch'].filter((n) => digests[n]).map((name) => ({ name, digest: { sha256: digests[name] } })),
  ];
  const statement: Statement = { _type: STATEMENT_TYPE, subject, predicateType: PREDICATE_TYPE, predicate: { runId, files: digests } };
  const payload = Buffer.from(JSON.stringify(statement));
  const envelope: DsseEnvelope = {
    payloadType: PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [{ keyid: key.keyId, sig: sign(null, pae(PAYLOAD_TYPE, payload), key.privateKey).toString('base64') }],
  };
  const all = [...files].map(([name, content]) => ({ name, content }));
  all.push({ name: ATTESTATION, content: Buffer.from(JSON.stringify(envelope, null, 2) + '\n') });
  return packTarGz(all);
}

export type VerifyResult = { ok: true; statement: Statement; keyId: string; files: string[] } | { ok: false; problem: string };

/**
 * Checks a bundle against a public key: the signature over the statement, then every file against its digest, and
 * that no file is missing or extra. The first problem found is named.
 */
export function verifyBundle(bundle: Buffer, publicKeyPem: string): VerifyResult {
  let files: Map<string, Buffer>;
  try {
    files = unpackTarGz(bundle);
  } catch (err) {
    return { ok: false, problem: `not a proof bundle (the .tar.gz \`nightshift proof\` writes, or the directory it unpacks to): ${(err as Error).message}` };
  }
  return verifyFiles(files, publicKeyPem);
}

/** The same checks over a bundle unpacked into `dir` (`tar xzf`): its files, by their paths in it. */
export function verifyBundleDir(dir: string, publicKeyPem: string): VerifyResult {
  const files = new Map<string, Buffer>();
  const walk = (rel: string): void => {
    for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(name);
      else if (entry.isFile()) files.set(name, readFileSync(path.join(dir, name)));
      else throw new Error(`${name} is not a regular file`);
    }
  };
  try {
    walk('');
  } catch (err) {
    return { ok: false, problem: (err as Error).message };
  }
  return verifyFiles(files, publicKeyPem);
}

function verifyFiles(files: Map<string, Buffer>, publicKeyPem: string): VerifyResult {
  const raw = files.get(ATTESTATION);
  if (!raw) return { ok: false, problem: `${ATTESTATION} is missing` };
  let envelope: DsseEnvelope;
  let statement: Statement;
  try {
    envelope = JSON.parse(raw.toString('utf8'));
    statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'));
  } catch {
    return { ok: false, problem: `${ATTESTATION} is not a DSSE envelope with an in-toto statement` };
  }
  const keyId = keyIdOf(publicKeyPem);
  const signature = envelope.signatures?.find((s) => s.keyid === keyId);
  if (!signature) return { ok: false, problem: `${ATTESTATION} is not signed by key ${keyId} (signed by ${envelope.signatures?.map((s) => s.keyid).join(', ') || 'nobody'})` };
  const payload = Buffer.from(envelope.payload, 'base64');
  if (envelope.payloadType !== PAYLOAD_TYPE || !verify(null, pae(envelope.payloadType, payload), createPublicKey(publicKeyPem), Buffer.from(signature.sig, 'base64'))) {
    return { ok: false, problem: `${ATTESTATION}: the signature does not match the statement` };
  }
  if (statement._type !== STATEMENT_TYPE || statement.predicateType !== PREDICATE_TYPE) return { ok: false, problem: `${ATTESTATION}: not a Nightshift proof statement` };
  const expected = statement.predicate.files;
  for (const [name, digest] of Object.entries(expected)) {
    const content = files.get(name);
    if (!content) return { ok: false, problem: `${name} is missing` };
    if (sha256(content) !== digest) return { ok: false, problem: `${name} does not match its digest (sha256:${digest})` };
  }
  for (const name of files.keys()) {
    if (name !== ATTESTATION && !(name in expected)) return { ok: false, problem: `${name} is not in the signed statement` };
  }
  for (const s of statement.subject) {
    if (s.digest.sha256 && expected[s.name] !== s.digest.sha256) return { ok: false, problem: `subject ${s.name} does not match its file` };
  }
  return { ok: true, statement, keyId, files: Object.keys(expected) };
}
