import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A failure the CLI reports as one line (plus spec issues) with an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly issues: { field: string; line?: number; message: string }[] = [],
    /** True when the API could not be reached, or could not reach a worker (worth retrying while following a run). */
    readonly unreachable = false,
  ) {
    super(message);
  }
}

const firstLine = (text: string) => text.split('\n')[0].trim();

/** HTTP status → exit code: 2 bad input, 3 unauthorized/forbidden, 4 not found, 5 conflict, 1 otherwise. */
function exitCodeFor(status: number): number {
  if (status === 400 || status === 413 || status === 415) return 2;
  if (status === 401 || status === 403) return 3;
  if (status === 404) return 4;
  if (status === 409) return 5;
  return 1;
}

export interface Response {
  status: number;
  headers: Headers;
  text: string;
  /** The body as bytes (a proof bundle). */
  bytes: Buffer;
  json<T = unknown>(): T;
}

/** The API as the CLI sees it: NIGHTSHIFT_URL and NIGHTSHIFT_TOKEN, else the local server's token file. */
export class ApiClient {
  readonly baseUrl: string;
  private readonly token?: string;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.baseUrl = (env.NIGHTSHIFT_URL || `http://127.0.0.1:${env.NIGHTSHIFT_PORT || 8420}`).replace(/\/+$/, '');
    const tokenFile = path.join(env.NIGHTSHIFT_HOME || path.join(os.homedir(), '.nightshift'), 'token');
    this.token = env.NIGHTSHIFT_TOKEN || (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined);
  }

  async request(
    method: string,
    route: string,
    opts: { body?: string; contentType?: string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...opts.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    let res: globalThis.Response;
    try {
      res = await fetch(this.baseUrl + route, { method, headers, body: opts.body });
    } catch {
      throw new CliError(`cannot reach the API at ${this.baseUrl} (is "nightshift up" running?)`, 1, [], true);
    }
    let bytes: Buffer;
    try {
      bytes = Buffer.from(await res.arrayBuffer());
    } catch {
      throw new CliError(`the API at ${this.baseUrl} closed the connection mid-answer`, 1, [], true);
    }
    const text = bytes.toString('utf8');
    const response: Response = {
      status: res.status,
      headers: res.headers,
      text,
      bytes,
      json: <T>() => {
        try {
          return JSON.parse(text) as T;
        } catch {
          throw new CliError(
            `the API at ${this.baseUrl} answered ${method} ${route.split('?')[0]} with something that is not JSON`,
            1,
          );
        }
      },
    };
    if (res.status >= 400) {
      let error: { message?: unknown; issues?: unknown } = {};
      try {
        const parsed = JSON.parse(text);
        if (parsed && typeof parsed.error === 'object' && parsed.error) error = parsed.error;
      } catch {
        // not JSON (a proxy's page, say): use the status
      }
      const message =
        typeof error.message === 'string' && error.message.trim()
          ? firstLine(error.message)
          : `HTTP ${res.status} ${res.statusText}`.trim();
      const issues = Array.isArray(error.issues)
        ? error.issues.map((i: { field?: unknown; line?: unknown; message?: unknown }) => ({
            field: typeof i?.field === 'string' ? i.field : '',
            line: typeof i?.line === 'number' ? i.line : undefined,
            message: firstLine(String(i?.message ?? '')),
          }))
        : [];
      // 503: the API is up but no worker (or Temporal) answered yet, as after a restart: worth retrying too.
      throw new CliError(message, exitCodeFor(res.status), issues, res.status === 503);
    }
    return response;
  }

  async json<T = unknown>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await this.request(method, route, body === undefined ? {} : { body: JSON.stringify(body) });
    return res.status === 204 ? (undefined as T) : res.json<T>();
  }
}
