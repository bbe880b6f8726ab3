import { ApplicationFailure } from '@temporalio/activity';
import { existsSync, readFileSync } from 'node:fs';

/**
 * Where a worker finds secret values: its own environment, then `$NIGHTSHIFT_HOME/secrets.env` (KEY=VALUE lines).
 * Only names the server allows (NIGHTSHIFT_ALLOWED_SECRETS) are ever handed out, and only to the runs naming them.
 */
export class SecretStore {
  constructor(
    private readonly allowed: string[],
    private readonly file: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** The values of the secrets a run names; a name that is not allowed or has no value fails the run. */
  resolve(names: string[], worker: string): Record<string, string> {
    const fromFile = this.readFile();
    const values: Record<string, string> = {};
    for (const name of names) {
      if (!this.allowed.includes(name)) {
        throw ApplicationFailure.nonRetryable(
          `secret ${name} is not allowed on worker ${worker} (NIGHTSHIFT_ALLOWED_SECRETS)`,
          'SecretNotAllowed',
        );
      }
      const value = this.env[name] ?? fromFile[name];
      if (value === undefined || value === '') {
        throw ApplicationFailure.nonRetryable(
          `secret ${name} has no value on worker ${worker}: set it in its environment or in ${this.file}`,
          'SecretMissing',
        );
      }
      values[name] = value;
    }
    return values;
  }

  /**
   * A value for the worker's own use, never handed to a sandbox (the model API key the gateway injects): no allowlist,
   * since no run can read it.
   */
  workerValue(name: string): string | undefined {
    return this.env[name] || this.readFile()[name] || undefined;
  }

  private readFile(): Record<string, string> {
    if (!existsSync(this.file)) return {};
    const out: Record<string, string> = {};
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      const m = /^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
      if (m) out[m[1]] = m[2].replace(/^(['"])(.*)\1$/, '$2');
    }
    return out;
  }
}
