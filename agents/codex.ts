import { CODEX_JS } from './cli';
import { JsonEventReader, oneLine, type AgentAdapter, type JsonEvent } from './adapter';

/**
 * OpenAI Codex, non-interactive: `codex exec --json`, full access inside the sandbox (the sandbox is the boundary).
 * It ignores OPENAI_BASE_URL, so the run's gateway is given as a model provider of its own.
 */
export const codexAdapter: AgentAdapter = {
  kind: 'codex',
  invocation(ctx) {
    if (!ctx.modelBaseUrl) throw new Error('codex needs the run’s model gateway');
    const provider = `model_providers.nightshift={name="nightshift",base_url="${ctx.modelBaseUrl}",wire_api="responses",env_key="OPENAI_API_KEY"}`;
    return {
      // CODEX_HOME must exist before codex starts.
      cmd: [
        'sh',
        '-c',
        'mkdir -p "$CODEX_HOME" && exec "$@"',
        'codex',
        'node',
        CODEX_JS,
        'exec',
        '--json',
        '--skip-git-repo-check',
        '-s',
        'danger-full-access',
        '-c',
        provider,
        '-c',
        'model_provider="nightshift"',
        ...(ctx.agent.model ? ['-m', ctx.agent.model] : []),
        ctx.prompt,
      ],
      env: { CODEX_HOME: '/home/sandbox/.codex' },
    };
  },
  reader: () => new CodexReader(),
};

/**
 * `--json` JSONL: `item.started`/`item.completed` (command_execution, agent_message, …), `turn.completed` with usage.
 */
class CodexReader extends JsonEventReader {
  constructor() {
    super({ toolCalls: 0, turns: 0, inputTokens: 0, outputTokens: 0 });
  }

  protected describe(e: JsonEvent): string {
    const item = e.item ?? {};
    if (e.type === 'item.started' && item.type === 'command_execution') {
      this.s.toolCalls++;
      return `▸ shell: ${oneLine(item.command)}\n`;
    }
    if (e.type === 'item.completed' && item.type === 'command_execution')
      return `  ${item.exit_code === 0 ? '↳' : '✗'} exit ${item.exit_code}: ${oneLine(item.aggregated_output ?? '')}\n`;
    if (e.type === 'item.completed' && item.type === 'agent_message') {
      this.s.finalMessage = item.text;
      return `assistant: ${oneLine(item.text, 2000)}\n`;
    }
    if (e.type === 'turn.completed') {
      this.s.turns! += 1;
      this.s.inputTokens! += e.usage?.input_tokens ?? 0;
      this.s.outputTokens! += e.usage?.output_tokens ?? 0;
      this.s.exitReason = 'completed';
    } else if (e.type === 'turn.failed' || e.type === 'error') {
      this.s.exitReason = 'failed';
      return `error: ${oneLine(e.error?.message ?? e.message ?? e)}\n`;
    }
    return '';
  }
}
