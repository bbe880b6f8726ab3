import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One model request from the sandbox, through the run's gateway (its URL and placeholder key in the environment). */
export const MODEL_CALL = `curl -s -o /dev/null "$ANTHROPIC_BASE_URL/v1/messages" -H "x-api-key: $ANTHROPIC_API_KEY" -d '{"model":"claude-sonnet-4-5","messages":[]}'`;

/** A scripted model API: every answer 30 in / 20 out tokens, $0.00039 at claude-sonnet-4-5's prices. */
export async function scriptedModel(): Promise<{ port: number; close: () => void }> {
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ type: 'message', content: [], usage: { input_tokens: 30, output_tokens: 20 } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** A command agent running `script`, whose model API is the scripted one on `port`. */
export function modelAgent(port: number, script: string): object {
  return {
    kind: 'command',
    api: 'anthropic',
    model: 'claude-sonnet-4-5',
    baseUrl: `http://127.0.0.1:${port}`,
    command: ['sh', '-c', script],
  };
}
