import { createHash, createPublicKey, sign, verify } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { packTarGz, unpackTarGz } from './tar';
import { keyIdOf, keyValidAt, type PublicKeyEntry, type SigningKey } from './keys';
import { PREVIOUS_PROOF, SLSA_PROVENANCE, STATEMENT_TYPE, type Provenance, type Statement } from './statements';

// The proof bundle (docs/proof.md): the run's evidence as files, and in-toto statements over them, each in a DSSE
// envelope signed with the server's ed25519 key: `attestation.json` (SLSA Provenance v1, which lists every other file
// by digest) and `attestations/*.json` (a Test Result per check, the decisions). Anyone with the public key can check
// it offline, with `nightshift verify` or with cosign.

const PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const ATTESTATION = 'attestation.json';
/** Bundles signed before SLSA provenance: a Nightshift predicate listing the files. They still verify. */
const LEGACY_PREDICATE = 'https://nightshift.dev/proof/v1';

export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** DSSE's pre-authentication encoding: what is signed, binding the payload to its type. */
function pae(payloadType: string, payload: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.length} `),
    payload,
  ]);
}

export function signStatement(statement: Statement, key: SigningKey): Buffer {
  const payload = Buffer.from(JSON.stringify(statement));
  const envelope: DsseEnvelope = {
    payloadType: PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [{ keyid: key.keyId, sig: sign(null, pae(PAYLOAD_TYPE, payload), key.privateKey).toString('base64') }],
  };
  return Buffer.from(JSON.stringify(envelope, null, 2) + '\n');
}

/** The statements of a bundle, made from the digests of its files. */
export interface BundleStatements {
  /** Signed into files of their own, first: the provenance then lists them with the rest. */
  attestations(digests: Record<string, string>): Map<string, Statement>;
  /** The provenance, over every file's digest (the attestations' included). */
  provenance(digests: Record<string, string>): Statement<Provenance>;
}

const digestsOf = (files: Map<string, Buffer>) =>
  Object.fromEntries([...files].map(([name, content]) => [name, sha256(content)]));

/** The bundle: the files as given, their statements signed with `key`. */
export async function buildBundle(
  evidence: Map<string, Buffer>,
  statements: BundleStatements,
  key: SigningKey,
): Promise<Buffer> {
  const files = new Map(evidence);
  for (const [name, s] of statements.attestations(digestsOf(evidence))) files.set(name, signStatement(s, key));
  files.set(ATTESTATION, signStatement(statements.provenance(digestsOf(files)), key));
  return packTarGz([...files].map(([name, content]) => ({ name, content })));
}

export interface Verified {
  ok: true;
  runId: string;
  keyId: string;
  files: string[];
  subject: Statement['subject'];
  /** The commit the run's branch stands on (its provenance's `base`): the run's commits are those after it. */
  baseCommit?: string;
  /** The proof this server signed before this one (proof log), by digest. */
  previous?: string;
  predicateType: string;
}
export type VerifyResult = Verified | { ok: false; problem: string };

/** Keys as given: the list `GET /v1/keys` serves, or one public key (PEM), valid at any time. */
export type TrustedKeys = PublicKeyEntry[] | string;

/**
 * Checks a bundle against the server's keys: the signature over each statement, then every file against its digest,
 * and that no file is missing or extra. The first problem found is named.
 */
export async function verifyBundle(bundle: Buffer, keys: TrustedKeys): Promise<VerifyResult> {
  let files: Map<string, Buffer>;
  try {
    files = await unpackTarGz(bundle);
  } catch (err) {
    return {
      ok: false,
      problem: `not a proof bundle (the .tar.gz \`nightshift proof\` writes, or the directory it unpacks to): ${(err as Error).message}`,
    };
  }
  return verifyFiles(files, keys);
}

/** The same checks over a bundle unpacked into `dir` (`tar xzf`): its files, by their paths in it. */
export function verifyBundleDir(dir: string, keys: TrustedKeys): VerifyResult {
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
  return verifyFiles(files, keys);
}

export type Opened = { ok: true; statement: Statement; keyid: string } | { ok: false; problem: string };

/** An envelope's statement, if one of `keys` signed it (valid when `at`, if given). */
export function openEnvelope(
  name: string,
  raw: Buffer | undefined,
  keys: PublicKeyEntry[],
  at?: (s: Statement) => string | undefined,
): Opened {
  if (!raw) return { ok: false, problem: `${name} is missing` };
  let envelope: DsseEnvelope;
  let statement: Statement;
  try {
    envelope = JSON.parse(raw.toString('utf8'));
    statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'));
  } catch {
    return { ok: false, problem: `${name} is not a DSSE envelope with an in-toto statement` };
  }
  const signatures = Array.isArray(envelope.signatures) ? envelope.signatures : [];
  const signature = signatures.find((s) => keys.some((k) => k.keyid === s.keyid));
  if (!signature)
    return {
      ok: false,
      problem: `${name} is not signed by key ${keys.map((k) => k.keyid).join(' or ')} (signed by ${signatures.map((s) => s.keyid).join(', ') || 'nobody'})`,
    };
  const payload = Buffer.from(envelope.payload, 'base64');
  const key = keys.find((k) => k.keyid === signature.keyid)!;
  if (
    envelope.payloadType !== PAYLOAD_TYPE ||
    !verify(
      null,
      pae(envelope.payloadType, payload),
      createPublicKey(key.publicKeyPem),
      Buffer.from(signature.sig, 'base64'),
    )
  ) {
    return { ok: false, problem: `${name}: the signature does not match the statement` };
  }
  if (statement._type !== STATEMENT_TYPE) return { ok: false, problem: `${name}: not an in-toto statement` };
  if (at && !keyValidAt(keys, signature.keyid, at(statement))) {
    return {
      ok: false,
      problem: `${name}: key ${signature.keyid} was not in use at ${at(statement) ?? '(no time given)'}, when the proof says it was signed`,
    };
  }
  return { ok: true, statement, keyid: signature.keyid };
}

export const asKeys = (keys: TrustedKeys): PublicKeyEntry[] =>
  typeof keys === 'string'
    ? [{ keyid: keyIdOf(keys), algorithm: 'ed25519', publicKeyPem: keys, sshPublicKey: '', validFrom: '' }]
    : keys;

function verifyFiles(files: Map<string, Buffer>, trusted: TrustedKeys): VerifyResult {
  const keys = asKeys(trusted);
  // A key list has windows; one key given alone is trusted at any time.
  const finishedOn =
    typeof trusted === 'string'
      ? undefined
      : (s: Statement) => (s.predicate as Provenance).runDetails?.metadata?.finishedOn;
  const opened = openEnvelope(ATTESTATION, files.get(ATTESTATION), keys, finishedOn);
  if (!opened.ok) return opened;
  const { statement, keyid } = opened;
  if (statement.predicateType === LEGACY_PREDICATE)
    return verifyLegacy(files, statement as Statement<{ runId: string; files: Record<string, string> }>, keyid);
  if (statement.predicateType !== SLSA_PROVENANCE)
    return { ok: false, problem: `${ATTESTATION}: not a Nightshift proof (predicate ${statement.predicateType})` };
  const provenance = statement as Statement<Provenance>;
  const listed = new Map<string, string>();
  for (const r of [...provenance.subject, ...(provenance.predicate.runDetails?.byproducts ?? [])])
    if (r.name && r.digest?.sha256 && r.name !== PREVIOUS_PROOF) listed.set(r.name, r.digest.sha256);
  const problem = checkDigests(files, listed) ?? checkAttestations(files, provenance, keys);
  if (problem) return { ok: false, problem };
  return {
    ok: true,
    runId: provenance.predicate.runDetails.metadata.invocationId,
    keyId: keyid,
    files: [...listed.keys()],
    subject: provenance.subject,
    baseCommit: provenance.predicate.buildDefinition?.resolvedDependencies?.find((d) => d.name === 'base')?.digest
      ?.gitCommit,
    previous: provenance.predicate.runDetails.byproducts.find((b) => b.name === PREVIOUS_PROOF)?.digest?.sha256,
    predicateType: provenance.predicateType,
  };
}

/** Every listed file there and matching; no file that is not listed. */
function checkDigests(files: Map<string, Buffer>, listed: Map<string, string>): string | undefined {
  for (const [name, digest] of listed) {
    const content = files.get(name);
    if (!content) return `${name} is missing`;
    if (sha256(content) !== digest) return `${name} does not match its digest (sha256:${digest})`;
  }
  for (const name of files.keys())
    if (name !== ATTESTATION && !listed.has(name)) return `${name} is not in the signed statement`;
  return undefined;
}

/** Each attestation under attestations/ signed by a server key, about the provenance's subject (a part of it). */
function checkAttestations(
  files: Map<string, Buffer>,
  provenance: Statement,
  keys: PublicKeyEntry[],
): string | undefined {
  const subject = new Set(provenance.subject.map((s) => JSON.stringify(s)));
  for (const name of files.keys()) {
    if (!name.startsWith('attestations/')) continue;
    const opened = openEnvelope(name, files.get(name), keys);
    if (!opened.ok) return opened.problem;
    if (!opened.statement.subject?.length || !opened.statement.subject.every((s) => subject.has(JSON.stringify(s))))
      return `${name}: its subject is not the provenance's`;
  }
  return undefined;
}

function verifyLegacy(
  files: Map<string, Buffer>,
  statement: Statement<{ runId: string; files: Record<string, string> }>,
  keyId: string,
): VerifyResult {
  const expected = new Map(Object.entries(statement.predicate.files));
  const problem = checkDigests(files, expected);
  if (problem) return { ok: false, problem };
  for (const s of statement.subject) {
    if (s.digest.sha256 && expected.get(s.name) !== s.digest.sha256)
      return { ok: false, problem: `subject ${s.name} does not match its file` };
  }
  return {
    ok: true,
    runId: statement.predicate.runId,
    keyId,
    files: [...expected.keys()],
    subject: statement.subject,
    predicateType: statement.predicateType,
  };
}
