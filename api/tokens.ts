import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

export const ROLES = ['viewer', 'submitter', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Globs (picomatch) over repo names relative to the repos dir, e.g. `billing`, `web-*`, `team/**`. */
export const RepoGlobsSchema = z.array(z.string().min(1)).min(1);

const TokenEntrySchema = z.strictObject({
  name: z.string().min(1),
  role: z.enum(ROLES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Set = the token may touch runs and schedules of these repos only; unset = every repo. Admin tokens ignore it. */
  repos: RepoGlobsSchema.optional(),
});
const TokenFileSchema = z.array(TokenEntrySchema);
type TokenEntry = z.infer<typeof TokenEntrySchema>;

export type Principal = Omit<TokenEntry, 'sha256'>;

const principalOf = ({ name, role, repos }: TokenEntry): Principal => ({ name, role, ...(repos ? { repos } : {}) });

export function atLeast(principal: Principal, role: Role): boolean {
  return ROLES.indexOf(principal.role) >= ROLES.indexOf(role);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * Bearer tokens with roles, stored hashed in `$NIGHTSHIFT_HOME/tokens.json`. The admin token lives in
 * `$NIGHTSHIFT_HOME/token` (mode 0600) so the CLI on this machine can use it; NIGHTSHIFT_TOKEN replaces it there.
 */
export class TokenStore {
  private entries: TokenEntry[] = [];
  private loadedAt = 0;
  private readonly file: string;

  constructor(private readonly home: string) {
    this.file = path.join(home, 'tokens.json');
    this.reload();
  }

  /**
   * Re-read tokens.json when it changed (`nightshift token add|rm` on the server's machine), so no restart is needed.
   */
  private reload(): void {
    const mtime = existsSync(this.file) ? statSync(this.file).mtimeMs : 0;
    if (mtime === this.loadedAt) return;
    this.entries = mtime ? TokenFileSchema.parse(JSON.parse(readFileSync(this.file, 'utf8'))) : [];
    this.loadedAt = mtime;
  }

  list(): Principal[] {
    this.reload();
    return this.entries.map(principalOf);
  }

  /** Revoke the token of `name`; false when there is none. */
  remove(name: string): boolean {
    this.reload();
    if (!this.entries.some((e) => e.name === name)) return false;
    this.save(this.entries.filter((e) => e.name !== name));
    return true;
  }

  /**
   * The admin token: NIGHTSHIFT_TOKEN when given (stored in the token file too, so the CLI on this machine needs only
   * NIGHTSHIFT_HOME, as with a generated one), else the one stored at first start (made now if missing).
   * `created` tells the caller to print it, once.
   */
  ensureAdmin(configured?: string): { token: string; created: boolean } {
    const tokenFile = path.join(this.home, 'token');
    if (configured) {
      this.upsert({ name: 'admin', role: 'admin', sha256: digest(configured).toString('hex') });
      if (!existsSync(tokenFile) || readFileSync(tokenFile, 'utf8').trim() !== configured)
        writeFileSync(tokenFile, configured + '\n', { mode: 0o600 });
      return { token: configured, created: false };
    }
    if (existsSync(tokenFile)) {
      const token = readFileSync(tokenFile, 'utf8').trim();
      this.upsert({ name: 'admin', role: 'admin', sha256: digest(token).toString('hex') });
      return { token, created: false };
    }
    const token = this.create('admin', 'admin');
    writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
    return { token, created: true };
  }

  /**
   * Make a token for `name` with `role`, limited to `repos` when given (replacing an older one of that name);
   * returns it, the only time it is seen.
   */
  create(name: string, role: Role, repos?: string[]): string {
    const token = `ns_${randomBytes(24).toString('base64url')}`;
    this.upsert({ name, role, sha256: digest(token).toString('hex'), ...(repos ? { repos } : {}) });
    return token;
  }

  verify(token: string): Principal | undefined {
    this.reload();
    const candidate = digest(token);
    let found: TokenEntry | undefined;
    // Compare against every entry in constant time, so timing says nothing about which (if any) matched.
    for (const e of this.entries) {
      if (timingSafeEqual(candidate, Buffer.from(e.sha256, 'hex'))) found = e;
    }
    return found && principalOf(found);
  }

  private upsert(entry: TokenEntry): void {
    this.reload();
    const existing = this.entries.find((e) => e.name === entry.name);
    if (existing?.sha256 === entry.sha256 && existing.role === entry.role && !existing.repos && !entry.repos) return;
    this.save([...this.entries.filter((e) => e.name !== entry.name), entry]);
  }

  private save(entries: TokenEntry[]): void {
    mkdirSync(this.home, { recursive: true });
    writeFileSync(this.file, JSON.stringify(entries, null, 2) + '\n', { mode: 0o600 });
    this.entries = entries;
    this.loadedAt = statSync(this.file).mtimeMs;
  }
}
