import type { AgentAdapter, AgentContext, AgentInvocation } from './adapter';

/**
 * Any executable as the agent. It runs in the workspace and learns its task from the environment:
 * NIGHTSHIFT_PROMPT (the whole prompt), NIGHTSHIFT_PROMPT_FILE, NIGHTSHIFT_ITERATION and NIGHTSHIFT_FEEDBACK.
 */
export const commandAdapter: AgentAdapter = {
  kind: 'command',
  invocation(ctx: AgentContext): AgentInvocation {
    if (!ctx.agent.command) throw new Error('agent.command is required for agent.kind "command"');
    return {
      cmd: ctx.agent.command,
      env: {
        NIGHTSHIFT_PROMPT: ctx.prompt,
        NIGHTSHIFT_PROMPT_FILE: ctx.promptFile,
        NIGHTSHIFT_ITERATION: String(ctx.iteration),
        NIGHTSHIFT_FEEDBACK: ctx.feedback ?? '',
        ...(ctx.agent.model ? { NIGHTSHIFT_MODEL: ctx.agent.model } : {}),
      },
    };
  },
};
