import type { NextFunction, Request, RequestHandler, Response } from 'express';
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
      return next(new ApiError('too_many_requests', `too many invalid tokens from ${address}; try again in ${retryAfter} s`));
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
    next(atLeast(p, role) ? undefined : new ApiError('forbidden', `token "${p.name}" is a ${p.role}; this needs ${role}`));
  };
}
