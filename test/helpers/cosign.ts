import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { goInstall, toolsDir } from '../../temporal/cli';

/** Sigstore's cosign, the independent verifier of proofs: built once into the tools dir like the Temporal CLI. */
const COSIGN = { module: 'github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5', binary: 'cosign', what: 'cosign v2.6.5 (the independent proof verifier)' };

export async function ensureCosign(progress?: (line: string) => void): Promise<string> {
  const built = path.join(toolsDir(), COSIGN.binary);
  return existsSync(built) ? built : goInstall(COSIGN, progress);
}

/**
 * `cosign verify-blob-attestation` offline (no transparency log, no network): the envelope in `signature` checked
 * with `key`, of predicate `type`, about `blob`.
 */
export function cosignVerify(cosign: string, opts: { key: string; type: string; signature: string; blob: string }): { code: number; output: string } {
  const r = spawnSync(cosign, ['verify-blob-attestation', '--key', opts.key, '--type', opts.type, '--insecure-ignore-tlog=true', '--signature', opts.signature, opts.blob], {
    encoding: 'utf8',
    env: { ...process.env, SIGSTORE_NO_CACHE: '1', TUF_ROOT: path.join(path.dirname(opts.signature), '.sigstore') },
    timeout: 60_000,
  });
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
