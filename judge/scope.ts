import picomatch from 'picomatch';
import type { Spec } from '../spec/schema';

/** Files outside `allow`, or inside `deny`. Dotfiles match like any other file. */
export function scopeViolations(changedFiles: string[], scope: Spec['scope']): string[] {
  const allowed = picomatch(scope.allow, { dot: true });
  const denied = scope.deny.length ? picomatch(scope.deny, { dot: true }) : () => false;
  return changedFiles.filter((f) => !allowed(f) || denied(f));
}

/** Added plus removed lines of a unified diff. */
export function countDiffLines(diff: string): number {
  return diff
    .split('\n')
    .filter((l) => (l.startsWith('+') || l.startsWith('-')) && !l.startsWith('+++') && !l.startsWith('---')).length;
}
