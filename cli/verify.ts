import { existsSync, readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { sha256, verifyBundle, verifyBundleDir, type TrustedKeys, type Verified } from '../proof/bundle';
import { PublicKeyEntrySchema } from '../proof/keys';
import { ProofLogEntrySchema } from '../proof/log';
import { type ApiClient, CliError } from './client';

// `nightshift verify`: a proof bundle offline, or the server's whole proof log online (docs/proof.md).

const KeysFileSchema = z.object({ keys: z.array(PublicKeyEntrySchema).min(1) });

/**
 * The keys to trust: `--key` (a public key's PEM, or the JSON `GET /v1/keys` serves, every key with its window), else
 * this machine's server's keys ($NIGHTSHIFT_HOME/keys).
 */
export function trustedKeys(keyFile: string | undefined): TrustedKeys {
  const dir = path.join(process.env.NIGHTSHIFT_HOME || path.join(os.homedir(), '.nightshift'), 'keys');
  const file =
    keyFile ?? (existsSync(path.join(dir, 'keys.json')) ? path.join(dir, 'keys.json') : path.join(dir, 'signing.pub'));
  if (!existsSync(file))
    throw new CliError(`no public key at ${file}: give --key (GET /v1/keys on the server has it)`, 2);
  const text = readFileSync(file, 'utf8');
  if (!/^\s*[[{]/.test(text)) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is neither a public key (PEM) nor the JSON GET /v1/keys serves`, 2);
  }
  // keys.json is the bare list; GET /v1/keys wraps it.
  const keys = KeysFileSchema.safeParse(Array.isArray(parsed) ? { keys: parsed } : parsed);
  if (!keys.success) throw new CliError(`${file} is neither a public key (PEM) nor the JSON GET /v1/keys serves`, 2);
  return keys.data.keys;
}

/** The keys the server lists (`GET /v1/keys`): what to trust when checking what it serves, unless --key says. */
export async function serverKeys(api: ApiClient): Promise<TrustedKeys> {
  return KeysFileSchema.parse(await api.json('GET', '/v1/keys')).keys;
}

/** A bundle file or the directory it was unpacked to; what it proves, as lines to print. */
export async function verifyBundleAt(bundle: string, keys: TrustedKeys): Promise<string[]> {
  if (!existsSync(bundle)) throw new CliError(`no such bundle: ${bundle}`, 2);
  const result = statSync(bundle).isDirectory()
    ? verifyBundleDir(bundle, keys)
    : await verifyBundle(readFileSync(bundle), keys);
  if (!result.ok) throw new CliError(`verification failed: ${result.problem}`, 1);
  return describe(result);
}

function describe(v: Verified): string[] {
  return [
    `verified: run ${v.runId}, ${v.files.length} files, signed by ${v.keyId}`,
    ...v.subject.map(
      (s) =>
        `  ${s.name}  ${Object.entries(s.digest)
          .map(([k, d]) => `${k}:${d}`)
          .join(' ')}`,
    ),
    ...(v.previous ? [`  after proof sha256:${v.previous} in the server's proof log`] : []),
  ];
}

/**
 * Walk the server's proof log: each proof as served must have the digest the log gives, verify against the server's
 * keys, be the run the log says, and name the proof before it; a proof removed or replaced breaks one of these.
 * `progress` hears each proof checked.
 */
export async function verifyProofLog(
  api: ApiClient,
  keys: TrustedKeys | undefined,
  progress: (line: string) => void,
): Promise<string> {
  const entries = z
    .array(ProofLogEntrySchema)
    .parse((await api.json<{ entries: unknown }>('GET', '/v1/proofs/log')).entries);
  const trusted = keys ?? (await serverKeys(api));
  let previous: string | undefined;
  for (const [i, entry] of entries.entries()) {
    const where = `proof #${entry.seq} (run ${entry.runId})`;
    if (entry.seq !== i + 1)
      throw new CliError(`proof log broken: entry ${i + 1} is numbered #${entry.seq}; an entry was removed`, 1);
    const bundle = await api.request('GET', `/v1/proofs/${entry.proof}`).then(
      (r) => r.bytes,
      (err: CliError) => {
        throw new CliError(
          `proof log broken: ${where} cannot be read: ${err.message}`,
          err.unreachable ? err.exitCode : 1,
        );
      },
    );
    if (sha256(bundle) !== entry.proof)
      throw new CliError(
        `proof log broken: ${where} is not the proof the log records (sha256:${entry.proof}); it was replaced`,
        1,
      );
    const result = await verifyBundle(bundle, trusted);
    if (!result.ok) throw new CliError(`proof log broken: ${where}: ${result.problem}`, 1);
    if (result.runId !== entry.runId)
      throw new CliError(`proof log broken: ${where} is a proof of run ${result.runId}`, 1);
    if (result.previous !== previous) {
      throw new CliError(
        `proof log broken: ${where} names sha256:${result.previous ?? 'nothing'} before it, but the log has ${previous ? `sha256:${previous}` : 'nothing'}: a proof was removed or replaced`,
        1,
      );
    }
    progress(`#${entry.seq} ${entry.runId} sha256:${entry.proof} ok`);
    previous = entry.proof;
  }
  return entries.length
    ? `proof log verified: ${entries.length} proofs, each naming the one before it; the latest is sha256:${previous}`
    : 'proof log verified: empty';
}
