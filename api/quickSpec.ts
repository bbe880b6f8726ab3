import { WorkflowFailedError, type Client } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { headFile } from '../git/git';
import type { Config } from '../config';
import { RepoRefusedError } from '../config/repoResolution';
import { resolveSpecRepo, type SpecRepo } from '../config/remotes';
import { formatIssue, SpecError } from '../spec/parse';
import {
  quickSpec,
  QuickSpecError,
  readServerDefaults,
  REPO_DEFAULTS_FILE,
  type QuickRequest,
  type QuickSpecSource,
} from '../spec/quick';
import { repoFile } from '../workflows/repoConfig';
import { requireRepo, requireRepoName } from './auth';
import { ApiError } from './errors';
import type { Principal } from './tokens';

export interface QuickSpecDeps {
  client: Client;
  config: Config;
}

/** How long a person waits for a worker to read a registered repo's `.nightshift.yml`. */
const REMOTE_READ_TIMEOUT = '40s';

/**
 * The quick spec for `request` as `principal` may ask for it: the repo resolved (`refused` says how a bad one is
 * answered: a 404 for a repo named in a path, a 400 for one in a body), its token limit checked, then its
 * `.nightshift.yml` or the server's defaults read. Every failure is an ApiError with one line.
 */
export async function loadQuickSpec(
  deps: QuickSpecDeps,
  principal: Principal,
  request: QuickRequest,
  overrides: string | undefined,
  refused: (message: string) => ApiError,
): Promise<{ spec: Record<string, unknown>; source: QuickSpecSource }> {
  let repo: SpecRepo;
  try {
    repo = resolveSpecRepo(request.repo, deps.config);
  } catch (err) {
    throw err instanceof RepoRefusedError ? refused(err.message) : err;
  }
  if (repo.kind === 'local') requireRepo(principal, repo.path, deps.config.reposDir, `repo ${repo.name}`);
  else requireRepoName(principal, repo.remote.name, `repo ${repo.remote.name}`);
  const [repoYaml, serverYaml] = await Promise.all([
    readRepoDefaults(deps, repo),
    readServerDefaults(deps.config.specDefaultsFile).catch((err: Error) => {
      throw new ApiError('internal', err.message);
    }),
  ]);
  try {
    return quickSpec(request, repoYaml, serverYaml, overrides);
  } catch (err) {
    if (err instanceof QuickSpecError) {
      if (err.where === 'the overrides')
        throw new ApiError('bad_request', `invalid overrides: ${formatIssue(err.issues[0])}`, err.issues);
      if (err.where === REPO_DEFAULTS_FILE) throw new ApiError('bad_request', `repo ${request.repo}: ${err.message}`);
      throw new ApiError('internal', err.message);
    }
    if (err instanceof SpecError)
      throw new ApiError('bad_request', `invalid request: ${formatIssue(err.issues[0])}`, err.issues);
    throw err;
  }
}

/**
 * `.nightshift.yml` at HEAD of a local repo (git, pinned), or on a registered repo's default branch (through a worker).
 */
async function readRepoDefaults({ client, config }: QuickSpecDeps, repo: SpecRepo): Promise<string | undefined> {
  if (repo.kind === 'local') {
    try {
      return await headFile(repo.path, REPO_DEFAULTS_FILE);
    } catch (err) {
      throw new ApiError(
        'internal',
        `cannot read ${REPO_DEFAULTS_FILE} of repo ${repo.name}: ${(err as Error).message.split('\n')[0]}`,
      );
    }
  }
  const name = repo.remote.name;
  try {
    const text = await client.workflow.execute(repoFile, {
      taskQueue: config.taskQueue,
      workflowId: `nightshift-repo-file-${randomBytes(6).toString('hex')}`,
      args: [{ repo: name, path: REPO_DEFAULTS_FILE }],
      workflowExecutionTimeout: REMOTE_READ_TIMEOUT,
    });
    return text ?? undefined;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    // The activity's own message (a forge's answer, a refused fetch) is what helps; a timeout means no worker came.
    const cause: Error | undefined = err.cause?.cause instanceof Error ? err.cause.cause : err.cause;
    const reason = cause?.message ?? err.message;
    throw new ApiError('unavailable', `cannot read ${REPO_DEFAULTS_FILE} of repo ${name}: ${reason.split('\n')[0]}`);
  }
}
