import type { RunState } from '../../contracts/run';
import type { TestStack } from './stack';

/** What an attack's run came to, with its log. */
export type Verdict = { state: RunState; logs: string };

/**
 * A run submitted and followed to its verdict: failed, or awaiting approval (then rejected, so nothing is left
 * waiting); its log read through the API.
 */
export async function runToVerdict(stack: TestStack, spec: object, timeoutMs: number): Promise<Verdict> {
  const id = await stack.submit(spec);
  const state = await stack.waitFor(id, ['failed', 'awaiting_approval'], timeoutMs);
  const logs = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
  if (state.status === 'awaiting_approval')
    await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'test over' } });
  return { state, logs };
}
