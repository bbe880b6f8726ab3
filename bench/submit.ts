import type { Stack } from '../cli/up';

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
