import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ApiError } from './errors';
import { atLeast, type Principal, type Role, type TokenStore } from './tokens';

const PRINCIPAL = Symbol('principal');

/** Bearer-token authentication: every route but /healthz needs a known token. */
export function authenticate(tokens: TokenStore): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return next(new ApiError('unauthorized', 'missing bearer token: send "Authorization: Bearer <token>"'));
    const principal = tokens.verify(m[1]);
    if (!principal) return next(new ApiError('unauthorized', 'invalid token'));
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
