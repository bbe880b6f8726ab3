import { lstatSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { readJson, withLock, writeAtomic } from './jsonFile';
import { resolveRepo } from './repoResolution';
import { WebhookSecrets } from './webhookSecrets';

/** A registered repo's name: what a spec's `repo` and a token's `--repos` globs name, and the mirror's file name. */
export const REMOTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const FORGES = ['gitea', 'github', 'none'] as const;
export const SECRET_NAME = /^[A-Z_][A-Z0-9_]*$/;

/**
 * Why git must not be handed `url`, or undefined. Only the forms git dials itself over a network (http, https,
 * ssh://); never a transport helper (`ext::` runs a command), an option (`-…`), or a password in the URL, which
 * would then sit in remotes.json, the mirror's config and every process listing: a credential goes by name.
 */
export function remoteUrlProblem(url: string): string | undefined {
  if (/[\x00-\x20\x7f]/.test(url)) return 'holds a space or a control character';
  if (url.startsWith('-')) return 'begins with "-"';
  if (url.includes('::')) return 'names a git transport helper ("::")';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL: use https://host/owner/name.git, http://… or ssh://git@host[:port]/owner/name.git';
  }
  if (!['https:', 'http:', 'ssh:'].includes(parsed.protocol))
    return `uses ${parsed.protocol.slice(0, -1)}: only https, http and ssh:// URLs are allowed`;
  if (parsed.password)
    return "holds a password: give the credential with --credential NAME (a secret in the server's secrets.env)";
  if (!parsed.hostname) return 'has no host';
  if (parsed.search || parsed.hash) return 'has a query or a fragment';
  if (parsed.pathname.length < 2) return 'has no repository path';
  return undefined;
}

const RemoteUrlSchema = z.string().superRefine((url, ctx) => {
  const problem = remoteUrlProblem(url);
  if (problem) ctx.addIssue({ code: 'custom', message: `url ${problem}` });
});

export const RemoteRepoSchema = z.strictObject({
  name: z
    .string()
    .regex(REMOTE_NAME, 'name must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit'),
  url: RemoteUrlSchema,
  forge: z.enum(FORGES, { error: `forge must be one of ${FORGES.join(', ')}` }).default('none'),
  credential: z
    .string()
    .regex(SECRET_NAME, "credential must be a secret's NAME (A-Z, 0-9, _) from secrets.env, not its value")
    .optional(),
  approvers: z
    .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'approvers must be forge user names'))
    .default([]),
  addedAt: z.iso.datetime(),
});
export type RemoteRepo = z.infer<typeof RemoteRepoSchema>;
/** What an admin gives to register a repo (POST /v1/repos). */
export const RemoteRepoInputSchema = RemoteRepoSchema.omit({ addedAt: true });
export type RemoteRepoInput = z.input<typeof RemoteRepoInputSchema>;

const RemotesFileSchema = z.array(RemoteRepoSchema);

/** Why a registration was refused: `invalid` (400), `exists` (409) or `missing` (404); one line. */
export class RemoteRepoError extends Error {
  constructor(
    message: string,
    readonly kind: 'invalid' | 'exists' | 'missing',
  ) {
    super(message);
  }
}

/**
 * The registered remote repos, in `$NIGHTSHIFT_HOME/remotes.json`, and their webhook secrets, in
 * `webhook-secrets.json` (both 0600, replaced whole by a rename). Changes hold a lock file, so two adds at once
 * (two API processes on one home) do not lose one. Read fresh each time: the worker sees an add at once.
 */
export class RemoteRepos {
  private readonly file: string;
  private readonly secrets: WebhookSecrets;

  /** `reposDir`: the local repos (NIGHTSHIFT_REPOS_DIR), whose names a registration may not take. */
  constructor(
    home: string,
    private readonly reposDir?: string,
  ) {
    this.file = path.join(home, 'remotes.json');
    this.secrets = new WebhookSecrets(path.join(home, 'webhook-secrets.json'));
  }

  list(): RemoteRepo[] {
    return readJson(this.file, RemotesFileSchema, []);
  }

  get(name: string): RemoteRepo | undefined {
    return this.list().find((r) => r.name === name);
  }

  /** Register a repo; the webhook secret is made here and returned this once (`webhookSecret` reads it later). */
  add(input: unknown): { repo: RemoteRepo; webhookSecret: string } {
    const parsed = RemoteRepoInputSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.path.join('.');
      throw new RemoteRepoError(
        issue.message.startsWith(`${field} `) || !field ? issue.message : `${field}: ${issue.message}`,
        'invalid',
      );
    }
    const repo: RemoteRepo = { ...parsed.data, addedAt: new Date().toISOString() };
    if (this.reposDir && existsOrLink(path.join(this.reposDir, repo.name))) {
      throw new RemoteRepoError(
        `name ${repo.name} is taken by a local repo in the repos directory (NIGHTSHIFT_REPOS_DIR); pick another`,
        'invalid',
      );
    }
    return withLock(this.file, () => {
      const repos = this.list();
      if (repos.some((r) => r.name === repo.name))
        throw new RemoteRepoError(`repo ${repo.name} is already registered; remove it first`, 'exists');
      const webhookSecret = this.secrets.make(repo.name);
      writeAtomic(this.file, [...repos, repo]);
      return { repo, webhookSecret };
    });
  }

  /** Unregister `name` (its mirrors stay on the workers until removed by hand); false when it was not registered. */
  remove(name: string): boolean {
    return withLock(this.file, () => {
      const repos = this.list();
      if (!repos.some((r) => r.name === name)) return false;
      writeAtomic(
        this.file,
        repos.filter((r) => r.name !== name),
      );
      this.secrets.drop(name);
      return true;
    });
  }

  webhookSecret(name: string): string | undefined {
    return this.secrets.get(name);
  }
}

/** A spec's `repo` as the server reads it: a registered remote by name, else a local repo inside the repos dir. */
export type SpecRepo = { kind: 'local'; path: string; name: string } | { kind: 'remote'; remote: RemoteRepo };

/**
 * The one decision on a spec's `repo`, made by the API at submit and again by the worker at provision: a registered
 * name is that remote (only the admin's registration makes the worker dial out); anything else goes through
 * config/repoResolution.ts's boundary, which refuses every URL (RepoRefusedError).
 */
export function resolveSpecRepo(repo: string, where: { home: string; reposDir: string }): SpecRepo {
  const remote = registeredRemote(repo, where.home);
  return remote ? { kind: 'remote', remote } : { kind: 'local', ...resolveRepo(repo, where.reposDir) };
}

/** The remote registered as `repo`, if `repo` is such a name. */
export function registeredRemote(repo: string, home: string): RemoteRepo | undefined {
  return REMOTE_NAME.test(repo) ? new RemoteRepos(home).get(repo) : undefined;
}

/** What a run stores as its repo: a local repo's real path, a remote's registered name. */
export function storedRepo(resolved: SpecRepo): string {
  return resolved.kind === 'local' ? resolved.path : resolved.remote.name;
}

function existsOrLink(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
