import type { NextFunction, Request, RequestHandler, Response } from 'express';
import picomatch from 'picomatch';
import * as path from 'node:path';
import { REMOTE_NAME } from '../config/remotes';
import { repoNameOf } from '../config/repoResolution';
import type { AuthFailureLimiter } from './authLimiter';
import { ApiError } from './errors';
import { atLeast, type Principal, type Role, type TokenStore } from './tokens';

const PRINCIPAL = Symbol('principal');

/**
 * Bearer-token authentication: every route but /healthz and the OpenAPI document needs a known token. An address
 * that sent too many invalid tokens is refused (429) before its token is looked at.
 */
export function authenticate(tokens: TokenStore, limiter: AuthFailureLimiter): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    // `trust proxy` is off: the peer's address, which a client cannot forge with a header.
    const address = req.socket.remoteAddress ?? 'unknown';
    const retryAfter = limiter.retryAfterSeconds(address);
    if (retryAfter) {
      res.set('Retry-After', String(retryAfter));
      return next(
        new ApiError('too_many_requests', `too many invalid tokens from ${address}; try again in ${retryAfter} s`),
      );
    }
    const header = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return next(new ApiError('unauthorized', 'missing bearer token: send "Authorization: Bearer <token>"'));
    const principal = tokens.verify(m[1]);
    if (!principal) {
      limiter.recordFailure(address);
      return next(new ApiError('unauthorized', 'invalid token'));
    }
    (req as unknown as Record<symbol, Principal>)[PRINCIPAL] = principal;
    next();
  };
}

export function principalOf(req: Request): Principal {
  const p = (req as unknown as Record<symbol, Principal | undefined>)[PRINCIPAL];
  if (!p) throw new ApiError('unauthorized', 'not authenticated');
  return p;
}

export function requireRole(role: Role): RequestHandler {
  return (req, _res, next) => {
    const p = principalOf(req);
    next(
      atLeast(p, role) ? undefined : new ApiError('forbidden', `token "${p.name}" is a ${p.role}; this needs ${role}`),
    );
  };
}

/**
 * Whether the principal may touch runs and schedules of the repo at `repoPath` (a real path, as runs store it, or a
 * registered remote's name): a token made with `--repos` only when the repo's name (`repoLimitName`) matches one of its
 * globs; admins and unlimited tokens always. A repo outside the repos dir (a run from before the boundary) matches no
 * limit.
 */
export function repoAllowed(principal: Principal, repoPath: string | undefined, reposDir: string): boolean {
  return repoNameAllowed(principal, repoPath === undefined ? undefined : repoLimitName(repoPath, reposDir));
}

/** `repoAllowed` by the repo's name (relative to the repos dir, or a registered repo's name). */
export function repoNameAllowed(principal: Principal, name: string | undefined): boolean {
  if (!principal.repos || principal.role === 'admin') return true;
  return name !== undefined && picomatch.isMatch(name, principal.repos, { dot: true });
}

/**
 * The name a token's repo limits match for a run's stored repo: a local repo's path relative to the repos dir, or a
 * registered remote's name (runs store those bare, config/remotes.ts `storedRepo`).
 */
export function repoLimitName(repo: string, reposDir: string): string | undefined {
  return path.isAbsolute(repo) ? repoNameOf(repo, reposDir) : REMOTE_NAME.test(repo) ? repo : undefined;
}

/** A 403 unless `repoAllowed`; `what` names the thing refused ("run ns-…", "repo billing"). */
export function requireRepo(principal: Principal, repoPath: string | undefined, reposDir: string, what: string): void {
  requireRepoName(principal, repoPath === undefined ? undefined : repoLimitName(repoPath, reposDir), what);
}

/** A 403 unless `repoNameAllowed`. */
export function requireRepoName(principal: Principal, name: string | undefined, what: string): void {
  if (!repoNameAllowed(principal, name)) {
    throw new ApiError(
      'forbidden',
      `token "${principal.name}" is limited to repos ${principal.repos!.join(', ')}; ${what} is not in them`,
    );
  }
}
