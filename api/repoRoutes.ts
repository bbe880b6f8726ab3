import { readdirSync } from 'node:fs';
import { Router } from 'express';
import { z } from 'zod';
import type { Config } from '../config';
import { FORGES, RemoteRepoError, RemoteRepos, RemoteRepoSchema } from '../config/remotes';
import { RegisteredForges } from '../config/forges';
import { resolveRepo } from '../config/repoResolution';
import { principalOf, repoAllowed, requireRole } from './auth';
import { ApiError } from './errors';
import { bodyText } from './runs';

/** A repo as `GET /v1/repos` lists it: never a credential's value (its NAME only). */
export const RepoListingSchema = z.object({
  name: z.string().describe("What a spec's `repo` names"),
  kind: z
    .enum(['local', 'remote'])
    .describe("local: in the server's repos directory; remote: registered with `nightshift repo add`"),
  url: z.string().optional(),
  forge: z.enum(FORGES).optional(),
  credential: z.string().optional().describe("The server secret's NAME whose value the workers use for it"),
  approvers: z.array(z.string()).optional(),
});
type RepoListing = z.infer<typeof RepoListingSchema>;

export const RepoAddedSchema = z.object({
  repo: RemoteRepoSchema,
  webhook: z.object({
    url: z.url(),
    secret: z.string().describe('Shown this once: give it to the forge with the webhook URL'),
  }),
});

/** Where a forge sends the webhook deliveries of a registered repo or forge `name`. */
export function webhookUrl(config: Pick<Config, 'publicUrl'>, name: string): string {
  return `${config.publicUrl.replace(/\/+$/, '')}/v1/forges/${encodeURIComponent(name)}/webhook`;
}

/**
 * A repo's and a forge's webhooks share that URL, told apart by name (a repo's first): a registration whose `name`
 * the other kind holds is a 409, or one of the two would hear nothing.
 */
export function refuseWebhookNameOf(body: unknown, others: { get(name: string): unknown }, kind: string): void {
  const name = (body as { name?: unknown } | null)?.name;
  if (typeof name === 'string' && others.get(name))
    throw new ApiError(
      'conflict',
      `name ${name} is a registered ${kind}'s (their webhooks share the name); pick another`,
    );
}

/**
 * Local repos: git repositories one level below the repos dir, by the names specs use (links pointing out left out).
 */
export function localRepos(reposDir: string): { name: string; path: string }[] {
  let entries: string[];
  try {
    entries = readdirSync(reposDir);
  } catch {
    return [];
  }
  const found = new Map<string, string>();
  for (const entry of entries) {
    try {
      const { name, path } = resolveRepo(entry, reposDir);
      found.set(name, path);
    } catch {
      // not a repo, or a link pointing out: not offered
    }
  }
  return [...found].sort(([a], [b]) => a.localeCompare(b)).map(([name, path]) => ({ name, path }));
}

/** Registered remote repos (config/remotes.ts) and the local ones: list for everyone, add and remove for admins. */
export function reposRouter(config: Config): Router {
  const router = Router();
  const remotes = () => new RemoteRepos(config.home, config.reposDir);

  router.get('/', requireRole('viewer'), (req, res) => {
    const principal = principalOf(req);
    const registered = remotes()
      .list()
      .map(({ name, url, forge, credential, approvers }): RepoListing => ({
        name,
        kind: 'remote',
        url,
        forge,
        ...(credential ? { credential } : {}),
        approvers,
      }));
    // A limited token sees the repos its globs match: a local one by its name in the repos dir, a remote by its name.
    const local = localRepos(config.reposDir)
      .filter((r) => !registered.some((x) => x.name === r.name) && repoAllowed(principal, r.path, config.reposDir))
      .map(({ name }): RepoListing => ({ name, kind: 'local' }));
    res.json({ repos: [...registered.filter((r) => repoAllowed(principal, r.name, config.reposDir)), ...local] });
  });

  router.post('/', requireRole('admin'), (req, res) => {
    let body: unknown;
    try {
      body = JSON.parse(bodyText(req));
    } catch {
      throw new ApiError('bad_request', 'the body must be JSON: {"name", "url", "forge", "credential", "approvers"}');
    }
    refuseWebhookNameOf(body, new RegisteredForges(config.home), 'forge');
    try {
      const { repo, webhookSecret } = remotes().add(body);
      res.status(201).json({ repo, webhook: { url: webhookUrl(config, repo.name), secret: webhookSecret } });
    } catch (err) {
      throw apiErrorOf(err);
    }
  });

  router.delete('/:name', requireRole('admin'), (req, res) => {
    const name = String(req.params.name);
    if (!remotes().remove(name))
      throw new ApiError('not_found', `no registered repo named ${JSON.stringify(name.slice(0, 100))}`);
    res.status(204).end();
  });
  return router;
}

/** A registration refused (config/remotes.ts RemoteRepoError) as the API answers it. */
export function apiErrorOf(err: unknown): unknown {
  if (!(err instanceof RemoteRepoError)) return err;
  const code = ({ invalid: 'bad_request', exists: 'conflict', missing: 'not_found' } as const)[err.kind];
  return new ApiError(code, err.message.split('\n')[0]);
}
