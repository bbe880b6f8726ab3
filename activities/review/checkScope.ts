import type { Spec } from '../../spec/schema';
import { scopeViolations } from '../../judge/scope';

export async function checkScope(input: {
  changedFiles: string[];
  scope: Spec['scope'];
}): Promise<{ violations: string[] }> {
  return { violations: scopeViolations(input.changedFiles, input.scope) };
}
