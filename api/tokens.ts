import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

export const ROLES = ['viewer', 'submitter', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  name: string;
  role: Role;
}

const TokenFileSchema = z.array(z.strictObject({ name: z.string().min(1), role: z.enum(ROLES), sha256: z.string().regex(/^[0-9a-f]{64}$/) }));
type TokenEntry = z.infer<typeof TokenFileSchema>[number];

export function atLeast(principal: Principal, role: Role): boolean {
  return ROLES.indexOf(principal.role) >= ROLES.indexOf(role);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * Bearer tokens with roles, stored hashed in `$NIGHTSHIFT_HOME/tokens.json`. The admin token lives in
 * `$NIGHTSHIFT_HOME/token` (mode 0600) so the CLI on this machine can use it; NIGHTSHIFT_TOKEN replaces it.
 */
export class TokenStore {
  private entries: TokenEntry[] = [];
  private readonly file: string;

  constructor(private readonly home: string) {
    this.file = path.join(home, 'tokens.json');
    if (existsSync(this.file)) this.entries = TokenFileSchema.parse(JSON.parse(readFileSync(this.file, 'utf8')));
  }

  /**
   * The admin token: NIGHTSHIFT_TOKEN when given, else the one stored at first start (made now if missing).
   * `created` tells the caller to print it, once.
   */
  ensureAdmin(configured?: string): { token: string; created: boolean } {
    if (configured) {
      this.upsert({ name: 'admin', role: 'admin', sha256: digest(configured).toString('hex') });
      return { token: configured, created: false };
    }
    const tokenFile = path.join(this.home, 'token');
    if (existsSync(tokenFile)) {
      const token = readFileSync(tokenFile, 'utf8').trim();
      this.upsert({ name: 'admin', role: 'admin', sha256: digest(token).toString('hex') });
      return { token, created: false };
    }
    const token = this.create('admin', 'admin');
    writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
    return { token, created: true };
  }

  /** Make a token for `name` with `role` (replacing an older one of that name); returns it, the only time it is seen. */
  create(name: string, role: Role): string {
    const token = `ns_${randomBytes(24).toString('base64url')}`;
    this.upsert({ name, role, sha256: digest(token).toString('hex') });
    return token;
  }

  verify(token: string): Principal | undefined {
    const candidate = digest(token);
    let found: TokenEntry | undefined;
    // Compare against every entry in constant time, so timing says nothing about which (if any) matched.
    for (const e of this.entries) {
      if (timingSafeEqual(candidate, Buffer.from(e.sha256, 'hex'))) found = e;
    }
    return found && { name: found.name, role: found.role };
  }

  private upsert(entry: TokenEntry): void {
    const existing = this.entries.find((e) => e.name === entry.name);
    if (existing?.sha256 === entry.sha256 && existing.role === entry.role) return;
    this.entries = [...this.entries.filter((e) => e.name !== entry.name), entry];
    mkdirSync(this.home, { recursive: true });
    writeFileSync(this.file, JSON.stringify(this.entries, null, 2) + '\n', { mode: 0o600 });
  }
}
