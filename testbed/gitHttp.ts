import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { AddressInfo } from 'node:net';

/** One request the server answered: what the tests count (requests, bytes sent) and what they check (the header). */
export interface GitHttpRequest {
  method: string;
  path: string;
  status: number;
  /** Response body bytes: a fetch that needs little gets little. */
  bytes: number;
  authorized: boolean;
}

export interface GitHttpServer {
  /** `http://127.0.0.1:PORT`; a repo `<root>/NAME.git` is `${url}/NAME.git`. */
  url: string;
  requests: GitHttpRequest[];
  close(): Promise<void>;
}

/** The git that serves: not whatever `git` a test put first on PATH (a shim logging the client's argv). */
const GIT = process.env.NIGHTSHIFT_TEST_REAL_GIT ?? '/usr/bin/git';

/**
 * Git's smart HTTP protocol on loopback: `git http-backend` (CGI) behind a tiny Node server serving the bare repos
 * under `root`, pushes included. With `authorization`, every request without exactly that Authorization header is
 * answered 401 (so a fetch that succeeds proves the credential was sent). Every request is logged.
 */
export async function startGitHttp(
  root: string,
  opts: { authorization?: string; port?: number; link?: Link } = {},
): Promise<GitHttpServer> {
  const requests: GitHttpRequest[] = [];
  const server = createServer((req, res) => {
    const authorized = opts.authorization === undefined || req.headers.authorization === opts.authorization;
    const entry: GitHttpRequest = { method: req.method ?? '', path: req.url ?? '', status: 0, bytes: 0, authorized };
    requests.push(entry);
    if (!authorized) {
      entry.status = 401;
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test"' }).end('authorization required\n');
      return;
    }
    if (opts.link) setTimeout(() => serveCgi(root, req, res, entry, opts.link), opts.link.rttMs);
    else serveCgi(root, req, res, entry);
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A network between the server and its clients, for benchmarks: every request waits one round trip before it is
 * served, and answers flow at most at `bytesPerSecond`. Loopback has neither, which no forge on the internet matches.
 */
export interface Link {
  bytesPerSecond: number;
  rttMs: number;
}

/** Passes bytes on no faster than the link carries them. */
class Paced extends Transform {
  constructor(private readonly bytesPerSecond: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    setTimeout(() => done(null, chunk), (chunk.length / this.bytesPerSecond) * 1000);
  }
}

function serveCgi(root: string, req: IncomingMessage, res: ServerResponse, entry: GitHttpRequest, link?: Link): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const child = spawn(GIT, ['http-backend'], {
    env: {
      PATH: process.env.PATH,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      // receive-pack (push) is served to an authenticated user only.
      REMOTE_USER: 'tester',
      REMOTE_ADDR: '127.0.0.1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
      ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  req.pipe(child.stdin);
  const out = link ? child.stdout.pipe(new Paced(link.bytesPerSecond)) : child.stdout;
  let head = Buffer.alloc(0);
  let headersDone = false;
  out.on('data', (chunk: Buffer) => {
    if (headersDone) {
      entry.bytes += chunk.length;
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    headersDone = true;
    const headers: Record<string, string> = {};
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      const [name, value] = [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
      if (name.toLowerCase() === 'status') status = parseInt(value, 10);
      else headers[name] = value;
    }
    entry.status = status;
    res.writeHead(status, headers);
    const body = head.subarray(end + 4);
    entry.bytes += body.length;
    res.write(body);
  });
  out.on('end', () => {
    if (!headersDone) {
      entry.status = 502;
      res.writeHead(502).end('http-backend failed\n');
    } else res.end();
  });
}
