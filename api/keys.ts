import { Router } from 'express';
import type { Config } from '../config';
import { allowedSigners, COMMIT_SIGNER, listKeys, rotateSigningKey } from '../proof/keys';
import { requireRole } from './auth';

/**
 * The server's signing keys (proof/keys.ts): every key it signs or signed with, for `nightshift verify` and cosign
 * on another machine, and as git's allowed_signers for `git verify-commit`. Rotation is an admin's.
 */
export function keysRouter(config: Config): Router {
  const router = Router();
  router.get('/', (_req, res) => {
    res.json({ keys: listKeys(config.home) });
  });
  router.get('/allowed_signers', (_req, res) => {
    res.type('text/plain').send(allowedSigners(listKeys(config.home), COMMIT_SIGNER));
  });
  router.post('/rotate', requireRole('admin'), (_req, res) => {
    res.status(201).json(rotateSigningKey(config.home));
  });
  return router;
}
