import { Router } from 'express';
import type { Config } from '../config';
import { RegisteredForges } from '../config/forges';
import { requireRole } from './auth';
import { ApiError } from './errors';
import { apiErrorOf } from './repoRoutes';
import { bodyText } from './runs';

/**
 * Registered forges (config/forges.ts): what a campaign's `repos:` selector lists repos on. Listed for everyone (never
 * a credential's value, its NAME only); added and removed by admins.
 */
export function forgeRegistryRouter(config: Config): Router {
  const router = Router();
  const forges = () => new RegisteredForges(config.home);

  router.get('/', requireRole('viewer'), (_req, res) => {
    res.json({ forges: forges().list() });
  });

  router.post('/', requireRole('admin'), (req, res) => {
    let body: unknown;
    try {
      body = JSON.parse(bodyText(req));
    } catch {
      throw new ApiError('bad_request', 'the body must be JSON: {"name", "kind", "url", "credential", "owners"}');
    }
    try {
      res.status(201).json({ forge: forges().add(body) });
    } catch (err) {
      throw apiErrorOf(err);
    }
  });

  router.delete('/:name', requireRole('admin'), (req, res) => {
    const name = String(req.params.name);
    if (!forges().remove(name))
      throw new ApiError('not_found', `no registered forge named ${JSON.stringify(name.slice(0, 100))}`);
    res.status(204).end();
  });
  return router;
}
