import { Router } from 'express';
import { z } from 'zod';
import { defaultsYaml, QUICK_SPEC_SOURCES, repoDefaults } from '../spec/quick';
import { principalOf, requireRole } from './auth';
import { ApiError } from './errors';
import { loadQuickSpec, type QuickSpecDeps } from './quickSpec';

/** What `GET /v1/repos/:name/defaults` answers: the spec a quick run of the repo starts from, for the form to show. */
export const RepoDefaultsSchema = z.object({
  source: z
    .enum(QUICK_SPEC_SOURCES)
    .describe("The repo's .nightshift.yml (default branch), the server's spec-defaults.yml, or the built-in defaults"),
  yaml: z.string().describe('The spec minus title and task, as YAML: what POST /v1/runs/quick takes as overrides'),
});

/** Mounted at `/v1/repos/:name/defaults`; the name is URL-encoded (`team%2Fapp` for a repo in a subdirectory). */
export function repoDefaultsRouter(deps: QuickSpecDeps): Router {
  const router = Router({ mergeParams: true });
  router.get('/', requireRole('viewer'), async (req, res) => {
    const name = String(req.params.name);
    const { spec, source } = await loadQuickSpec(
      deps,
      principalOf(req),
      repoDefaults(name),
      undefined,
      (message) => new ApiError('not_found', message),
    );
    res.json({ source, yaml: defaultsYaml(spec) } satisfies z.infer<typeof RepoDefaultsSchema>);
  });
  return router;
}
