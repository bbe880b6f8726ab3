// Campaign admission (docs/campaigns.md): a spec whose `repos:` names many repos, each repo's run admitted as any spec
// is (admission/prepareRun.ts), so a campaign can ask nothing a run could not. A bad campaign is a 400 naming the
// field, and nothing starts.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config';
import { RegisteredForges, type RegisteredForge } from '../config/forges';
import { REMOTE_NAME } from '../config/remotes';
import type { CampaignInput, CampaignRepoInput, RepoSelector, ResolvedSelector } from '../contracts/campaign';
import { formatIssue, specFields, SpecError, type SpecIssue } from '../spec/parse';
import { prepareRun, SpecRejected } from './prepareRun';

const CampaignFieldsSchema = (maxRepos: number) =>
  z.object({
    repos: z.union(
      [
        z
          .array(z.string().trim().min(1, 'must not be empty'))
          .min(1, 'a campaign names at least one repo')
          .max(maxRepos, `at most ${maxRepos} repos (NIGHTSHIFT_CAMPAIGN_MAX_REPOS)`),
        z.object({ forge: z.unknown() }).loose(),
      ],
      { error: 'a list of repo names' },
    ),
    concurrency: z.number().int().min(1, 'at least 1').max(100, 'at most 100').default(5),
    mode: z.enum(['each', 'batch']).default('each'),
  });

const plainPath = (p: string) => !p.startsWith('/') && p.split('/').every((part) => !['', '.', '..'].includes(part));

const SelectorSchema = z.strictObject({
  forge: z.string().regex(REMOTE_NAME, 'must name a registered forge'),
  owner: z.string().regex(/^[\w.-]{1,64}$/, 'must be a forge user or organisation name'),
  match: z.string().min(1, 'must not be empty').max(200, 'at most 200 characters').default('*'),
  has: z.string().max(500, 'at most 500 characters').refine(plainPath, 'must be a plain relative path').optional(),
});

const refused = (issue: SpecIssue) => new SpecRejected(`invalid campaign: ${formatIssue(issue)}`, [issue]);

/** The campaign's fields as read, or a SpecRejected naming where it is not one. */
function campaignFields(text: string, contentType: string | undefined): Record<string, unknown> {
  try {
    return specFields(text, contentType).fields as Record<string, unknown>;
  } catch (err) {
    if (err instanceof SpecError) throw new SpecRejected(`invalid campaign: ${formatIssue(err.issues[0])}`, err.issues);
    throw err;
  }
}

/**
 * The campaign's selector and its forge, when `repos:` is one: the forge registered, the owner one its admin opened
 * to selectors. Undefined when `repos:` is anything else (prepareCampaign judges it).
 */
export function campaignSelector(
  text: string,
  contentType: string | undefined,
  config: Config,
): { selector: RepoSelector; forge: RegisteredForge } | undefined {
  const { repos } = campaignFields(text, contentType);
  if (repos === null || typeof repos !== 'object' || Array.isArray(repos)) return undefined;
  const parsed = SelectorSchema.safeParse(repos);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw refused({ field: ['repos', ...issue.path].join('.'), message: issue.message });
  }
  const selector = parsed.data;
  const forge = new RegisteredForges(config.home).get(selector.forge);
  if (!forge) throw refused({ field: 'repos.forge', message: `no forge named ${selector.forge} is registered` });
  if (!forge.owners.includes(selector.owner))
    throw refused({
      field: 'repos.owner',
      message: `forge ${forge.name} does not open ${selector.owner} to selectors (its owners: ${forge.owners.join(', ')})`,
    });
  return { selector, forge };
}

/**
 * A campaign's input for the workflow `id`: the run each repo gets, and the repos in order. A selector's repos are
 * `selected`'s (resolved and registered by the caller).
 */
export function prepareCampaign(
  text: string,
  contentType: string | undefined,
  submittedBy: string,
  config: Config,
  id: string,
  selected?: ResolvedSelector,
): CampaignInput {
  const { repos, concurrency, tasks, repo, approval, ...spec } = campaignFields(text, contentType);
  if (repo !== undefined) throw refused({ field: 'repo', message: 'a campaign names its repos in `repos:`' });
  if (tasks !== undefined) throw refused({ field: 'tasks', message: 'a campaign runs one spec per repo, not a plan' });
  const { mode, ...runApproval } = (approval ?? {}) as Record<string, unknown>;
  const parsed = CampaignFieldsSchema(config.campaignMaxRepos).safeParse({ repos, concurrency, mode });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw refused({ field: issue.path.join('.').replace(/^mode$/, 'approval.mode'), message: issue.message });
  }
  const names = Array.isArray(parsed.data.repos) ? parsed.data.repos : selected?.repos;
  if (!names) throw new Error("a selector's repos are resolved before the campaign is prepared");
  if (!names.length) throw refused({ field: 'repos', message: 'the selector matched no repo' });
  const runIds = new Set<string>();
  const admitted: CampaignRepoInput[] = [];
  let first: ReturnType<typeof prepareRun> | undefined;
  for (const [i, name] of names.entries()) {
    const twice = names.indexOf(name);
    if (twice !== i) throw refused({ field: `repos.${i}`, message: `"${name}" is listed twice (repos.${twice})` });
    const run = admittedRun({ ...spec, approval: runApproval, repo: name }, submittedBy, config, i);
    first ??= run;
    const runId = uniqueRunId(id, name, runIds);
    admitted.push({
      name,
      repo: run.spec.repo,
      runId,
      deliver: run.spec.deliver,
      ...(run.forge ? { forge: run.forge } : {}),
    });
  }
  return {
    run: { ...first!, specDigest: createHash('sha256').update(text).digest('hex') },
    repos: admitted,
    concurrency: parsed.data.concurrency,
    approvalMode: parsed.data.mode,
    ...(selected ? { selector: selected } : {}),
  };
}

/** One repo's run as prepareRun admits it; a problem with the repo itself is named as the campaign's `repos.N`. */
function admittedRun(fields: Record<string, unknown>, submittedBy: string, config: Config, i: number) {
  try {
    return prepareRun(JSON.stringify(fields), 'application/json', submittedBy, config);
  } catch (err) {
    if (!(err instanceof SpecRejected)) throw err;
    const [issue] = err.issues;
    if (issue?.field === 'repo') throw refused({ field: `repos.${i}`, message: issue.message });
    throw new SpecRejected(err.message.replace(/^invalid spec: /, 'invalid campaign: '), err.issues);
  }
}

/** `<campaign>-<repo>`, the repo's name made a run id's (lowercase letters, digits, "-"), unique in the campaign. */
function uniqueRunId(id: string, name: string, taken: Set<string>): string {
  const slug =
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 60) || 'repo';
  let runId = `${id}-${slug}`;
  for (let n = 2; taken.has(runId); n++) runId = `${id}-${slug}-${n}`;
  taken.add(runId);
  return runId;
}
