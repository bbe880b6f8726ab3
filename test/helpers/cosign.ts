import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Config } from '../../config';
import { verifyBundle } from '../../proof/bundle';
import { allowedSigners, COMMIT_SIGNER, listKeys } from '../../proof/keys';
import { readProofLog } from '../../proof/log';
import { unpackTarGz } from '../../proof/tar';
import { openArtifactStore } from '../../store/openArtifacts';
import { goInstall, toolsDir } from '../../temporal/cli';

/** Sigstore's cosign, the independent verifier of proofs: built once into the tools dir like the Temporal CLI. */
const COSIGN = {
  module: 'github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5',
  binary: 'cosign',
  what: 'cosign v2.6.5 (the independent proof verifier)',
};

export async function ensureCosign(progress?: (line: string) => void): Promise<string> {
  const built = path.join(toolsDir(), COSIGN.binary);
  return existsSync(built) ? built : goInstall(COSIGN, progress);
}

/**
 * `cosign verify-blob-attestation` offline (no transparency log, no network): the envelope in `signature` checked
 * with `key`, of predicate `type`, about `blob`.
 */
export function cosignVerify(
  cosign: string,
  opts: { key: string; type: string; signature: string; blob: string },
): { code: number; output: string } {
  const r = spawnSync(
    cosign,
    [
      'verify-blob-attestation',
      '--key',
      opts.key,
      '--type',
      opts.type,
      '--insecure-ignore-tlog=true',
      '--signature',
      opts.signature,
      opts.blob,
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, SIGSTORE_NO_CACHE: '1', TUF_ROOT: path.join(path.dirname(opts.signature), '.sigstore') },
      timeout: 60_000,
    },
  );
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

/**
 * Every proof a test server signed (its proof log), checked as a security team would: cosign with the key that
 * signed it, and `nightshift verify`'s checks with the server's key list. Throws naming the first proof refused.
 */
export async function verifyEveryProof(config: Pick<Config, 'home' | 'artifacts'>): Promise<number> {
  const entries = readProofLog(config.home);
  if (!entries.length) return 0;
  const cosign = await ensureCosign();
  const keys = listKeys(config.home);
  const store = openArtifactStore(config);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-proofs-'));
  const allowedSignersFile = path.join(dir, 'allowed_signers');
  writeFileSync(allowedSignersFile, allowedSigners(keys, COMMIT_SIGNER));
  try {
    for (const e of entries) {
      const bundle = await store.get(e.proof);
      const checked = await verifyBundle(bundle, keys);
      if (!checked.ok) throw new Error(`the proof of run ${e.runId} fails nightshift verify: ${checked.problem}`);
      const files = await unpackTarGz(bundle);
      const envelope = JSON.parse(files.get('attestation.json')!.toString()) as { signatures: { keyid: string }[] };
      const key = keys.find((k) => k.keyid === envelope.signatures[0].keyid)!;
      const at = (name: string) => path.join(dir, `${e.seq}-${name.replace(/\//g, '_')}`);
      const blob = files.has('diff.patch') ? 'diff.patch' : 'manifest.json';
      for (const name of ['attestation.json', blob]) writeFileSync(at(name), files.get(name)!);
      writeFileSync(at('key.pub'), key.publicKeyPem);
      const r = cosignVerify(cosign, {
        key: at('key.pub'),
        type: 'slsaprovenance1',
        signature: at('attestation.json'),
        blob: at(blob),
      });
      if (r.code !== 0 || !r.output.includes('Verified OK'))
        throw new Error(`cosign refused the proof of run ${e.runId} (sha256:${e.proof}): ${r.output.trim()}`);
      verifyDeliveredCommit(e.runId, JSON.parse(files.get('manifest.json')!.toString()), allowedSignersFile);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return entries.length;
}

/** The commit a proof names, where it was delivered (the test's repo, while it is there): git verify-commit passes. */
function verifyDeliveredCommit(
  runId: string,
  manifest: { repo: string; finalCommit?: string },
  allowedSignersFile: string,
): void {
  if (!manifest.finalCommit || !existsSync(manifest.repo)) return;
  const git = (args: string[]) =>
    spawnSync('git', ['-C', manifest.repo, '-c', `gpg.ssh.allowedSignersFile=${allowedSignersFile}`, ...args], {
      encoding: 'utf8',
    });
  if (git(['cat-file', '-e', `${manifest.finalCommit}^{commit}`]).status !== 0) return; // not delivered there (the run's delivery failed, or the test moved it)
  const r = git(['verify-commit', manifest.finalCommit]);
  if (r.status !== 0)
    throw new Error(
      `git verify-commit refused run ${runId}'s delivered commit ${manifest.finalCommit}: ${r.stderr.trim()}`,
    );
}
