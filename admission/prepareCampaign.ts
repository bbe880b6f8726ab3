// Campaign admission (docs/campaigns.md): a spec whose `repos:` names many repos, each repo's run admitted as any spec
// is (admission/prepareRun.ts), so a campaign can ask nothing a run could not. A bad campaign is a 400 naming the
// field, and nothing starts.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config';
import type { CampaignInput, CampaignRepoInput } from '../contracts/campaign';
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
        z.object({ forge: z.string() }).loose(),
      ],
      { error: 'a list of repo names' },
    ),
    concurrency: z.number().int().min(1, 'at least 1').max(100, 'at most 100').default(5),
    mode: z.enum(['each', 'batch']).default('each'),
  });

const refused = (issue: SpecIssue) => new SpecRejected(`invalid campaign: ${formatIssue(issue)}`, [issue]);

/** A campaign's input for the workflow `id`: the run each repo gets, and the repos in order. */
export function prepareCampaign(
  text: string,
  contentType: string | undefined,
  submittedBy: string,
  config: Config,
  id: string,
): CampaignInput {
  let read;
  try {
    read = specFields(text, contentType);
  } catch (err) {
    if (err instanceof SpecError) throw new SpecRejected(`invalid campaign: ${formatIssue(err.issues[0])}`, err.issues);
    throw err;
  }
  const { repos, concurrency, tasks, repo, approval, ...spec } = read.fields as Record<string, unknown>;
  if (repo !== undefined) throw refused({ field: 'repo', message: 'a campaign names its repos in `repos:`' });
  if (tasks !== undefined) throw refused({ field: 'tasks', message: 'a campaign runs one spec per repo, not a plan' });
  const { mode, ...runApproval } = (approval ?? {}) as Record<string, unknown>;
  const parsed = CampaignFieldsSchema(config.campaignMaxRepos).safeParse({ repos, concurrency, mode });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw refused({ field: issue.path.join('.').replace(/^mode$/, 'approval.mode'), message: issue.message });
  }
  if (!Array.isArray(parsed.data.repos))
    throw refused({ field: 'repos', message: 'a selector over a forge is not supported yet: list the repos by name' });
  const names = parsed.data.repos;
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
