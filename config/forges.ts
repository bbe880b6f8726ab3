// Registered forges (docs/campaigns.md): a forge a campaign's selector may list repos on, with the credential the
// workers use there and the owners an admin opened to selectors. Kept in `$NIGHTSHIFT_HOME/forges.json` (0600); the
// secret of each forge's own webhook (an owner's, reporting merges) in `forge-webhook-secrets.json` (0600).
import * as path from 'node:path';
import { z } from 'zod';
import { readJson, withLock, writeAtomic } from './jsonFile';
import { WebhookSecrets } from './webhookSecrets';
import { REMOTE_NAME, RemoteRepoError, remoteUrlProblem, SECRET_NAME } from './remotes';

/** The forges a selector can list repos on: Gitea's API lists an owner's repos (GitHub's stand-in does not, yet). */
export const SELECTOR_FORGES = ['gitea'] as const;

export const RegisteredForgeSchema = z.strictObject({
  name: z
    .string()
    .regex(REMOTE_NAME, 'name must be 1-64 letters, digits, "_", "." or "-", starting with one of the first two'),
  kind: z.enum(SELECTOR_FORGES, { error: `kind must be one of ${SELECTOR_FORGES.join(', ')}` }).default('gitea'),
  /** The forge's web address (`http(s)://host[:port][/sub/path]`): its API and its repos' clone URLs are under it. */
  url: z.string().superRefine((url, ctx) => {
    const problem = remoteUrlProblem(`${url.replace(/\/+$/, '')}/owner/repo.git`);
    if (problem || !/^https?:\/\//.test(url))
      ctx.addIssue({ code: 'custom', message: `url ${problem ?? 'must be http(s)'}` });
  }),
  credential: z
    .string()
    .regex(SECRET_NAME, "credential must be a secret's NAME (A-Z, 0-9, _) from secrets.env, not its value"),
  /** The owners (users or organisations) whose repos a selector may reach: the credential may see more. */
  owners: z
    .array(z.string().regex(/^[\w.-]{1,64}$/, 'owners must be forge user or organisation names'))
    .min(1, 'owners: at least one'),
  /** Forge users whose approval counts on the repos a selector registers (as a registered repo's approvers). */
  approvers: z
    .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'approvers must be forge user names'))
    .default([]),
  addedAt: z.iso.datetime(),
});
export type RegisteredForge = z.infer<typeof RegisteredForgeSchema>;
const ForgesFileSchema = z.array(RegisteredForgeSchema);

/** The registered forges; read fresh each time, changed under a lock (config/jsonFile.ts). */
export class RegisteredForges {
  private readonly file: string;
  private readonly secrets: WebhookSecrets;

  constructor(home: string) {
    this.file = path.join(home, 'forges.json');
    this.secrets = new WebhookSecrets(path.join(home, 'forge-webhook-secrets.json'));
  }

  list(): RegisteredForge[] {
    return readJson(this.file, ForgesFileSchema, []);
  }

  get(name: string): RegisteredForge | undefined {
    return this.list().find((f) => f.name === name);
  }

  /** Register a forge; its webhook secret is made here and returned this once (`webhookSecret` reads it later). */
  add(input: unknown): { forge: RegisteredForge; webhookSecret: string } {
    const parsed = RegisteredForgeSchema.omit({ addedAt: true }).safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.path.join('.');
      throw new RemoteRepoError(
        issue.message.startsWith(field) || !field ? issue.message : `${field}: ${issue.message}`,
        'invalid',
      );
    }
    const forge: RegisteredForge = {
      ...parsed.data,
      url: parsed.data.url.replace(/\/+$/, ''),
      addedAt: new Date().toISOString(),
    };
    return withLock(this.file, () => {
      const forges = this.list();
      if (forges.some((f) => f.name === forge.name))
        throw new RemoteRepoError(`forge ${forge.name} is already registered; remove it first`, 'exists');
      const webhookSecret = this.secrets.make(forge.name);
      writeAtomic(this.file, [...forges, forge]);
      return { forge, webhookSecret };
    });
  }

  remove(name: string): boolean {
    return withLock(this.file, () => {
      const forges = this.list();
      if (!forges.some((f) => f.name === name)) return false;
      writeAtomic(
        this.file,
        forges.filter((f) => f.name !== name),
      );
      this.secrets.drop(name);
      return true;
    });
  }

  webhookSecret(name: string): string | undefined {
    return this.secrets.get(name);
  }
}
