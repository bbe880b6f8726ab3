import type { Stack } from '../cli/up';
import { FINAL_STATUSES, type RunState } from '../contracts/run';

/** A spec submitted to the stack's API, as a client would; its run's id. */
export async function submit(stack: Stack, body: object): Promise<string> {
  const res = await fetch(`${stack.apiUrl}/v1/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 202) throw new Error(`submit failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** A run's state, through the API. */
export async function get(stack: Stack, id: string): Promise<RunState> {
  const res = await fetch(`${stack.apiUrl}/v1/runs/${id}`, { headers: { authorization: `Bearer ${stack.token}` } });
  if (res.status !== 200) throw new Error(`GET ${id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as RunState;
}

/** A run once it ended (it must succeed). */
export async function ended(stack: Stack, id: string): Promise<RunState> {
  for (;;) {
    const state = await get(stack, id);
    if (FINAL_STATUSES.includes(state.status)) {
      if (state.status !== 'succeeded') throw new Error(`${id} ${state.status}: ${state.failure?.reason ?? ''}`);
      return state;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A run's time, start to end. */
export const span = (s: RunState) => Date.parse(s.updatedAt) - Date.parse(s.createdAt);
/** A run's time not spent in its agents or checks. */
export const overhead = (s: RunState) =>
  span(s) -
  s.stages.filter((x) => x.stage === 'agent' || x.stage === 'checks').reduce((a, x) => a + (x.durationMs ?? 0), 0);
