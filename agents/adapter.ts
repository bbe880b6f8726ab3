import type { Spec } from '../spec/schema';

/** What an adapter needs to start its agent inside the sandbox. */
export interface AgentContext {
  agent: Spec['agent'];
  prompt: string;
  /** The prompt as a file, at this path inside the sandbox. */
  promptFile: string;
  iteration: number;
  /** Feedback for this iteration (failed checks, scope, review, a human's requested changes), if any. */
  feedback?: string;
}

export interface AgentInvocation {
  cmd: string[];
  env: Record<string, string>;
}

/** One kind of agent (claude-code, codex, command): how to start it. Output parsing comes with the real CLIs. */
export interface AgentAdapter {
  readonly kind: Spec['agent']['kind'];
  invocation(ctx: AgentContext): AgentInvocation;
}
