import type { Principal, Role } from './api-types.js';

/** What a screen gets: where to draw, who is signed in, and a signal that aborts when the user leaves it. */
export interface ViewContext {
  root: HTMLElement;
  principal: Principal;
  signal: AbortSignal;
  /** The route's parameter (the run id on a run page). */
  param?: string;
}

const ROLES: Role[] = ['viewer', 'submitter', 'approver', 'admin'];

/** Whether the signed-in token's role reaches `role` (the API's rule), so the page shows only what it may do. */
export function can(principal: Principal, role: Role): boolean {
  return ROLES.indexOf(principal.role) >= ROLES.indexOf(role);
}

/** Calls `fn` now and every `ms` while the view is shown. */
export function every(ms: number, signal: AbortSignal, fn: () => Promise<void>): void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async () => {
    await fn().catch(() => undefined);
    if (!signal.aborted) timer = setTimeout(tick, ms);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  void tick();
}
