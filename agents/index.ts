import type { Spec } from '../spec/schema';
import type { AgentAdapter } from './adapter';
import { claudeCodeAdapter } from './claudeCode';
import { codexAdapter } from './codex';
import { commandAdapter } from './command';

/** The agent kinds this build can run. */
export const adapters: Record<Spec['agent']['kind'], AgentAdapter> = {
  'claude-code': claudeCodeAdapter,
  codex: codexAdapter,
  command: commandAdapter,
};

export function adapterFor(kind: Spec['agent']['kind']): AgentAdapter {
  return adapters[kind];
}
