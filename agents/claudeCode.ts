import { CLAUDE_BIN } from './cli';
import { JsonEventReader, oneLine, type AgentAdapter, type JsonEvent } from './adapter';

/**
 * Claude Code, non-interactive: `claude -p PROMPT --output-format stream-json --verbose`, every tool allowed (the
 * sandbox is the boundary, not its permission prompts), no autoupdater, no nonessential traffic. Its model API is the
 * run's gateway (ANTHROPIC_BASE_URL, set by the agent stage with a placeholder key).
 */
export const claudeCodeAdapter: AgentAdapter = {
  kind: 'claude-code',
  invocation(ctx) {
    return {
      cmd: [
        CLAUDE_BIN,
        '-p',
        ctx.prompt,
        '--output-format',
        'stream-json',
        '--verbose',
        '--dangerously-skip-permissions',
        ...(ctx.agent.model ? ['--model', ctx.agent.model] : []),
      ],
      env: {
        // It refuses --dangerously-skip-permissions as root unless told it is sandboxed; inside it is uid 1000 anyway.
        IS_SANDBOX: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_TELEMETRY: '1',
      },
    };
  },
  reader: () => new ClaudeCodeReader(),
};

/** stream-json: `system` (init), `assistant` (text, tool_use), `user` (tool_result), and a final `result`. */
class ClaudeCodeReader extends JsonEventReader {
  constructor() {
    super({ toolCalls: 0 });
  }

  protected describe(e: JsonEvent): string {
    let out = '';
    if (e.type === 'assistant') {
      for (const block of e.message?.content ?? []) {
        if (block.type === 'text' && block.text?.trim()) out += `assistant: ${oneLine(block.text, 2000)}\n`;
        if (block.type === 'tool_use') {
          this.s.toolCalls++;
          out += `▸ ${block.name}: ${oneLine(block.input?.command ?? block.input?.file_path ?? block.input)}\n`;
        }
      }
    } else if (e.type === 'user') {
      for (const block of e.message?.content ?? []) {
        if (block.type === 'tool_result')
          out += `  ${block.is_error ? '✗' : '↳'} ${oneLine(Array.isArray(block.content) ? block.content.map((c: { text?: string }) => c.text ?? '').join(' ') : block.content)}\n`;
      }
    } else if (e.type === 'result') {
      this.s.turns = e.num_turns;
      this.s.costUsd = e.total_cost_usd;
      this.s.inputTokens =
        (e.usage?.input_tokens ?? 0) +
        (e.usage?.cache_creation_input_tokens ?? 0) +
        (e.usage?.cache_read_input_tokens ?? 0);
      this.s.outputTokens = e.usage?.output_tokens;
      this.s.finalMessage = typeof e.result === 'string' ? e.result : undefined;
      this.s.exitReason = e.subtype;
      out += `result: ${e.subtype}${e.is_error ? ' (error)' : ''}, ${e.num_turns} turn(s)\n`;
    }
    return out;
  }
}
