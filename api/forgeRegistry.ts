import { Router } from 'express';
import type { Config } from '../config';
import { RegisteredForges } from '../config/forges';
import { RemoteRepos } from '../config/remotes';
import { requireRole } from './auth';
import { ApiError } from './errors';
import { apiErrorOf, refuseWebhookNameOf, webhookUrl } from './repoRoutes';
import { bodyText } from './runs';

/**
 * Registered forges (config/forges.ts): what a campaign's `repos:` selector lists repos on. Listed for everyone (never
 * a credential's value, its NAME only); added and removed by admins. Adding one answers its webhook's URL and secret,
 * once: an owner's webhook there reports the merges of the pull requests campaigns opened (api/forges.ts).
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
    refuseWebhookNameOf(body, new RemoteRepos(config.home), 'repo');
    try {
      const { forge, webhookSecret } = forges().add(body);
      res.status(201).json({ forge, webhook: { url: webhookUrl(config, forge.name), secret: webhookSecret } });
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
