import { Router } from 'express';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config';
import { readProofLog } from '../proof/log';
import type { ArtifactStore } from '../store/artifacts';
import { principalOf } from './auth';
import { ApiError } from './errors';

/**
 * The proof log (proof/log.ts): every proof the server signed, in order, and each proof by its digest, for
 * `nightshift verify --log`. It spans every repo, so a token limited to some repos may not read it; and only proofs
 * in the log are served here (never any other artifact by its digest).
 */
export function proofsRouter(config: Config, store: ArtifactStore): Router {
  const router = Router();
  router.use((req, _res, next) => {
    const p = principalOf(req);
    next(
      p.repos && p.role !== 'admin'
        ? new ApiError('forbidden', `token "${p.name}" is limited to some repos; the proof log spans every repo`)
        : undefined,
    );
  });
  router.get('/log', (_req, res) => {
    res.json({ entries: readProofLog(config.home) });
  });
  router.get('/:digest', async (req, res) => {
    const digest = req.params.digest.replace(/^sha256:/, '');
    if (!/^[0-9a-f]{64}$/.test(digest))
      throw new ApiError('bad_request', 'a proof is named by its sha256 digest (64 hex digits)');
    const entry = readProofLog(config.home).find((e) => e.proof === digest);
    if (!entry) throw new ApiError('not_found', `no proof sha256:${digest} in the proof log`);
    res.type('application/gzip').attachment(`${entry.runId}-proof.tar.gz`);
    await pipeline(await store.open(digest), res).catch(() => undefined);
  });
  return router;
}
