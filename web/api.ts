import type { ApiErrorBody, Principal, SpecIssueView } from './api-types.js';

const TOKEN_KEY = 'nightshift.token';

export function savedToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** An API error answer: its status and one-line message, and a spec's issues for a 400. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly issues: SpecIssueView[] = [],
  ) {
    super(message);
  }
}

export interface RequestOptions {
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
  token?: string;
  signal?: AbortSignal;
}

/** A request to the API with the bearer token; any non-2xx answer becomes an ApiFailure with the API's message. */
export async function request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token ?? savedToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: opts.body, signal: opts.signal });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new ApiFailure(0, `cannot reach the server: ${(err as Error).message}`);
  }
  if (!res.ok) throw await failureOf(res);
  return res;
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await request('GET', path, { signal })).json() as Promise<T>;
}

export async function postJson<T>(path: string, body: object = {}): Promise<T> {
  return (await request('POST', path, { body: JSON.stringify(body) })).json() as Promise<T>;
}

async function failureOf(res: Response): Promise<ApiFailure> {
  const text = await res.text();
  try {
    const { error } = JSON.parse(text) as ApiErrorBody;
    return new ApiFailure(res.status, error.message, error.issues);
  } catch {
    return new ApiFailure(res.status, `${res.status} ${res.statusText}`);
  }
}

/** Who the saved token is; an ApiFailure (401) for a bad one. */
export function whoAmI(token?: string): Promise<Principal> {
  return request('GET', '/v1/me', { token }).then((res) => res.json() as Promise<Principal>);
}
