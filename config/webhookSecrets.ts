import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { readJson, writeAtomic } from './jsonFile';

const SecretsFileSchema = z.record(z.string(), z.string());

/**
 * Webhook secrets by name, in one 0600 JSON file of the home, apart from what they sign for (a registered repo's,
 * a registered forge's): listing registrations never reads them. Callers hold their registration's lock.
 */
export class WebhookSecrets {
  constructor(private readonly file: string) {}

  /** A new secret for `name`, written before its registration is: a registration always has one. */
  make(name: string): string {
    const secret = randomBytes(32).toString('hex');
    writeAtomic(this.file, { ...readJson(this.file, SecretsFileSchema, {}), [name]: secret });
    return secret;
  }

  get(name: string): string | undefined {
    return readJson(this.file, SecretsFileSchema, {})[name];
  }

  drop(name: string): void {
    const { [name]: _gone, ...rest } = readJson(this.file, SecretsFileSchema, {});
    writeAtomic(this.file, rest);
  }
}
