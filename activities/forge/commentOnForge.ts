import type { ActivityDeps } from '../../runtime/deps';
import { forgeCall } from '../../forges/connect';
import { forgeOpener } from './forgeOpener';

export function commentOnForge(deps: ActivityDeps) {
  const open = forgeOpener(deps);
  return async (input: { repo: string; issue: number; body: string }): Promise<void> => {
    const { forge } = open(input.repo);
    await forgeCall(() => forge.comment(input.issue, input.body));
  };
}
