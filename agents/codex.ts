import { CODEX_JS } from './cli';
import { LineSplitter, oneLine, parseJsonLine, type AgentAdapter, type AgentSummary, type EventReader } from './adapter';

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
      cmd: ['sh', '-c', 'mkdir -p "$CODEX_HOME" && exec "$@"', 'codex', 'node', CODEX_JS, 'exec', '--json', '--skip-git-repo-check', '-s', 'danger-full-access', '-c', provider, '-c', 'model_provider="nightshift"', ...(ctx.agent.model ? ['-m', ctx.agent.model] : []), ctx.prompt],
      env: { CODEX_HOME: '/home/sandbox/.codex' },
    };
  },
  reader: () => new CodexReader(),
};

/** `--json` JSONL: `item.started`/`item.completed` (command_execution, agent_message, …), `turn.completed` with usage. */
class CodexReader implements EventReader {
  private readonly lines = new LineSplitter();
  private readonly s: AgentSummary = { toolCalls: 0, turns: 0, inputTokens: 0, outputTokens: 0 };

  push(chunk: string): string {
    let out = '';
    for (const line of this.lines.push(chunk)) {
      const e = parseJsonLine(line);
      if (!e) {
        out += `${line}\n`;
        continue;
      }
      const item = e.item ?? {};
      if (e.type === 'item.started' && item.type === 'command_execution') {
        this.s.toolCalls++;
        out += `▸ shell: ${oneLine(item.command)}\n`;
      } else if (e.type === 'item.completed' && item.type === 'command_execution') {
        out += `  ${item.exit_code === 0 ? '↳' : '✗'} exit ${item.exit_code}: ${oneLine(item.aggregated_output ?? '')}\n`;
      } else if (e.type === 'item.completed' && item.type === 'agent_message') {
        this.s.finalMessage = item.text;
        out += `assistant: ${oneLine(item.text, 2000)}\n`;
      } else if (e.type === 'turn.completed') {
        this.s.turns! += 1;
        this.s.inputTokens! += e.usage?.input_tokens ?? 0;
        this.s.outputTokens! += e.usage?.output_tokens ?? 0;
        this.s.exitReason = 'completed';
      } else if (e.type === 'turn.failed' || e.type === 'error') {
        this.s.exitReason = 'failed';
        out += `error: ${oneLine(e.error?.message ?? e.message ?? e)}\n`;
      }
    }
    return out;
  }

  summary(): AgentSummary {
    return { ...this.s };
  }
}
