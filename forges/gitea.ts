import { z } from 'zod';
import { type CommitStatus, type Forge, ForgeError, type ForgePermission } from './forge';

/** Where a repository is on a Gitea: its API (`…/api/v1`) and owner/name. */
export interface GiteaRepoRef {
  apiUrl: string;
  owner: string;
  name: string;
}

/**
 * The Gitea behind a clone URL: `http(s)://host[:port][/sub/path]/owner/name(.git)` → that origin and sub-path +
 * `/api/v1`. An ssh URL (`ssh://git@host[:port]/owner/name.git`) says nothing of the web side: https on the same host
 * is assumed. Undefined when the URL is neither.
 */
export function giteaRepoOf(cloneUrl: string): GiteaRepoRef | undefined {
  let u: URL;
  try {
    u = new URL(cloneUrl.trim());
  } catch {
    return undefined;
  }
  const parts = u.pathname.split('/').filter(Boolean);
  if (parts.length < 2) return undefined;
  const name = parts.pop()!.replace(/\.git$/, '');
  const owner = parts.pop()!;
  if (![owner, name].every((p) => /^[\w.-]+$/.test(p) && p !== '.' && p !== '..')) return undefined;
  const sub = parts.length ? `/${parts.join('/')}` : '';
  if (u.protocol === 'http:' || u.protocol === 'https:')
    return { apiUrl: `${u.protocol}//${u.host}${sub}/api/v1`, owner, name };
  if (u.protocol === 'ssh:' && !sub) return { apiUrl: `https://${u.hostname}/api/v1`, owner, name };
  return undefined;
}

// The parts of Gitea's answers we read (its API: /api/swagger on any Gitea).
const PullSchema = z.object({
  number: z.number(),
  html_url: z.string(),
  state: z.string(),
  head: z.object({ ref: z.string(), sha: z.string(), repo_id: z.number().optional() }),
  base: z.object({ repo_id: z.number().optional() }),
});
type Pull = z.infer<typeof PullSchema>;
const RepoSchema = z.object({ default_branch: z.string() });
const OwnerRepoSchema = z.object({ name: z.string(), clone_url: z.string(), archived: z.boolean().default(false) });
const PermissionSchema = z.object({ permission: z.string() });
const CombinedStatusSchema = z.object({
  state: z.string(),
  statuses: z
    .array(
      z.object({
        context: z.string(),
        status: z.string(),
        description: z.string().default(''),
        target_url: z.string().default(''),
      }),
    )
    .nullable(),
});

/** Pull requests scanned for the branch's before giving up: 20 pages of 50, newest activity first. */
const MAX_PULL_PAGES = 20;
const PAGE = 50;

/**
 * One repository on a Gitea, through its REST API with an access token (`Authorization: token …`). Every request has a
 * timeout and no retry of its own: the caller (a Temporal activity) retries, by `ForgeError.status`. Reading another
 * user's permission needs a token of a repo admin (or a site admin).
 */
export class GiteaForge implements Forge {
  private readonly root: string;
  private readonly base: string;

  constructor(private readonly repo: GiteaRepoRef & { token: string; timeoutMs?: number }) {
    this.root = repo.apiUrl.replace(/\/+$/, '');
    this.base = `${this.root}/repos/${encodeURIComponent(repo.owner)}/${encodeURIComponent(repo.name)}`;
  }

  /**
   * The repos of this repo's owner (an organisation's, else a user's) the token can see, archived ones left out, in
   * pages of 50; an owner with more than `max` is refused rather than listed in part.
   */
  async ownerRepos(max: number): Promise<{ name: string; cloneUrl: string }[]> {
    const owner = encodeURIComponent(this.repo.owner);
    let kind = 'orgs';
    const found: { name: string; cloneUrl: string }[] = [];
    for (let page = 1; found.length <= max; page++) {
      const res = await this.request('GET', `/${kind}/${owner}/repos?limit=${PAGE}&page=${page}`, undefined, this.root);
      // No organisation of that name: a user's repos, then.
      if (res.status === 404 && kind === 'orgs' && page === 1) {
        kind = 'users';
        page = 0;
        continue;
      }
      const repos = await this.parsed(z.array(OwnerRepoSchema), 'GET', `/${kind}/${owner}/repos`, res);
      found.push(...repos.filter((r) => !r.archived).map((r) => ({ name: r.name, cloneUrl: r.clone_url })));
      if (repos.length < PAGE) return found;
    }
    throw new ForgeError(`${this.repo.owner} has more than ${max} repos: a selector lists at most that many`, 400);
  }

  async openPullRequest(i: {
    branch: string;
    base: string;
    commit: string;
    title: string;
    body: string;
  }): Promise<{ number: number; url: string; created: boolean }> {
    const found = await this.findPullRequest(i.branch, i.commit);
    if (found) return { number: found.number, url: found.html_url, created: false };
    try {
      const pr = await this.json(PullSchema, 'POST', '/pulls', {
        head: i.branch,
        base: i.base,
        title: i.title,
        body: i.body,
      });
      return { number: pr.number, url: pr.html_url, created: true };
    } catch (err) {
      // 409: one is open for these branches already (an earlier attempt whose answer was lost, or someone else's).
      const again =
        err instanceof ForgeError && (err.status === 409 || err.status === 422)
          ? await this.findPullRequest(i.branch, i.commit)
          : undefined;
      if (again) return { number: again.number, url: again.html_url, created: false };
      throw err;
    }
  }

  /** The branch's PR from this repo: an open one, or a closed (or merged) one at this very commit. */
  private async findPullRequest(branch: string, commit: string): Promise<Pull | undefined> {
    for (let page = 1; page <= MAX_PULL_PAGES; page++) {
      const pulls = await this.json(
        z.array(PullSchema),
        'GET',
        `/pulls?state=all&sort=recentupdate&limit=${PAGE}&page=${page}`,
      );
      const mine = pulls.find(
        (pr) =>
          pr.head.ref === branch &&
          pr.head.repo_id === pr.base.repo_id &&
          (pr.state === 'open' || pr.head.sha === commit),
      );
      if (mine) return mine;
      if (pulls.length < PAGE) return undefined;
    }
    return undefined;
  }

  async comment(issue: number, body: string): Promise<void> {
    try {
      await this.json(z.unknown(), 'POST', `/issues/${issue}/comments`, { body });
    } catch (err) {
      // Gitea (1.27) answers 500 for an issue that is not there: a 404 once asked, so that nobody retries it.
      if (err instanceof ForgeError && err.status === 500) await this.json(z.unknown(), 'GET', `/issues/${issue}`);
      throw err;
    }
  }

  async permission(user: string): Promise<ForgePermission> {
    let permission: string;
    try {
      ({ permission } = await this.json(
        PermissionSchema,
        'GET',
        `/collaborators/${encodeURIComponent(user)}/permission`,
      ));
    } catch (err) {
      if (err instanceof ForgeError && err.status === 404 && (await this.exists())) return 'none'; // no such user
      throw err;
    }
    if (permission === 'owner' || permission === 'admin') return 'admin';
    return permission === 'write' || permission === 'read' ? permission : 'none';
  }

  async readFile(filePath: string, ref?: string): Promise<string | undefined> {
    const encoded = filePath.split('/').filter(Boolean).map(encodeURIComponent).join('/');
    const res = await this.request('GET', `/raw/${encoded}${ref ? `?ref=${encodeURIComponent(ref)}` : ''}`);
    // Gitea answers 404 both for a missing file and a repo it does not show this token: only the first is "no file".
    if (res.status === 404 && (await this.exists())) return undefined;
    if (!res.ok) throw await this.failure('GET', `/raw/${encoded}`, res);
    return res.text();
  }

  async defaultBranch(): Promise<string> {
    return (await this.json(RepoSchema, 'GET', '')).default_branch;
  }

  async commitStatus(sha: string): Promise<CommitStatus> {
    const combined = await this.json(
      CombinedStatusSchema,
      'GET',
      `/commits/${encodeURIComponent(sha)}/status?limit=${PAGE}`,
    );
    // Gitea combines error and warning into failure already; older ones may say error.
    const state =
      combined.state === 'success'
        ? 'success'
        : ['failure', 'error', 'warning'].includes(combined.state)
          ? 'failure'
          : 'pending';
    const statuses = (combined.statuses ?? []).map((s) => ({
      context: s.context,
      state: s.status,
      description: s.description,
      ...(s.target_url ? { url: s.target_url } : {}),
    }));
    return { state, statuses };
  }

  private async exists(): Promise<boolean> {
    const res = await this.request('GET', '');
    if (res.ok || res.status === 404) return res.ok;
    throw await this.failure('GET', '', res);
  }

  /** A 2xx answer in the shape `schema` reads; anything else a ForgeError. */
  private async json<T>(schema: z.ZodType<T>, method: string, path: string, body?: unknown): Promise<T> {
    return this.parsed(schema, method, path, await this.request(method, path, body));
  }

  private async parsed<T>(schema: z.ZodType<T>, method: string, path: string, res: Response): Promise<T> {
    if (!res.ok) throw await this.failure(method, path, res);
    const text = await res.text();
    let parsed: z.ZodSafeParseResult<T>;
    try {
      parsed = schema.safeParse(text ? JSON.parse(text) : undefined);
    } catch {
      throw new ForgeError(
        `Gitea's answer to ${method} ${pathOnly(path)} is not JSON: ${text.slice(0, 100)}`,
        res.status,
      );
    }
    if (!parsed.success)
      throw new ForgeError(
        `Gitea's answer to ${method} ${pathOnly(path)} is not what its API documents: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`,
        res.status,
      );
    return parsed.data;
  }

  /** `path` under the repo's API (`under` another: Gitea's API root for an owner's listing). */
  private async request(method: string, path: string, body?: unknown, under = this.base): Promise<Response> {
    const where = `${this.repo.owner}/${this.repo.name}`;
    try {
      return await fetch(`${under}${path}`, {
        method,
        headers: {
          Authorization: `token ${this.repo.token}`,
          Accept: 'application/json',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.repo.timeoutMs ?? 30_000),
        // A moved repo answers 301: reported, not followed with the token to wherever it points.
        redirect: 'manual',
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ForgeError(
        `Gitea did not answer ${method} ${pathOnly(path)} for ${where}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
  }

  private async failure(method: string, path: string, res: Response): Promise<ForgeError> {
    const text = await res.text().catch(() => '');
    let message = text.slice(0, 200);
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // not JSON (a proxy's page): its start is the reason
    }
    return new ForgeError(
      `Gitea answered ${res.status} to ${method} ${pathOnly(path)} for ${this.repo.owner}/${this.repo.name}: ${message || res.statusText}`,
      res.status,
    );
  }
}

/** A request's path without its query, for messages. */
function pathOnly(path: string): string {
  return `/repos/…${path.split('?')[0]}`;
}
