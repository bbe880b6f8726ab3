import type { Spec } from '../spec/schema';
import type { AgentAdapter } from './adapter';
import { commandAdapter } from './command';

/** The agent kinds this build can run. The contract also names claude-code and codex; their adapters come next. */
export const adapters: Partial<Record<Spec['agent']['kind'], AgentAdapter>> = {
  command: commandAdapter,
};

export function adapterFor(kind: Spec['agent']['kind']): AgentAdapter | undefined {
  return adapters[kind];
}

export function supportedAgentKinds(): string[] {
  return Object.keys(adapters);
}
