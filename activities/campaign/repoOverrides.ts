import { readRepoFile } from '../../git/repoFile';
import type { RepoOverrides } from '../../contracts/campaign';
import type { ActivityDeps } from '../../runtime/deps';
import { formatIssue, readFields, SpecError } from '../../spec/parse';
import { REPO_DEFAULTS_FILE } from '../../spec/quick';
import { SpecSchema } from '../../spec/schema';

/** What a repo's own file may set for its run in a campaign: how it is set up, what it may change, what judges it. */
const OVERRIDABLE = ['checks', 'setup', 'scope'] as const;

/**
 * A repo's `.nightshift.yml` (its default branch, never the agent's) as its campaign run's `checks`, `setup` and
 * `scope`, each validated as a spec's. Its other fields are the campaign's (docs/campaigns.md). A bad file is the
 * repo's problem, named, not the campaign's.
 */
export function repoOverrides(deps: ActivityDeps) {
  return async (input: { repo: string }): Promise<RepoOverrides> => {
    const text = await readRepoFile(deps, { repo: input.repo, path: REPO_DEFAULTS_FILE });
    if (text === undefined) return { fields: {} };
    let written: Record<string, unknown>;
    try {
      written = readFields(text, 'yaml', { emptyIsNone: true }).fields;
    } catch (err) {
      if (err instanceof SpecError) return { problem: `${REPO_DEFAULTS_FILE}: ${formatIssue(err.issues[0])}` };
      throw err;
    }
    const fields: RepoOverrides['fields'] = {};
    for (const key of OVERRIDABLE) {
      if (written[key] === undefined) continue;
      const parsed = SpecSchema.shape[key].safeParse(written[key]);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return { problem: `${REPO_DEFAULTS_FILE}: ${[key, ...issue.path].join('.')}: ${issue.message}` };
      }
      Object.assign(fields, { [key]: parsed.data });
    }
    return { fields };
  };
}
