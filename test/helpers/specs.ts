import type { Client } from '@temporalio/client';

export { spec, VALUE_REPO } from '../../testbed/specs';

/** A `.nightshift.yml` for VALUE_REPO: a command agent that makes the value 2, and the check that wants it. */
export const VALUE_SETTINGS = [
  'agent:',
  '  kind: command',
  '  command: [sh, -c, "echo 2 > src/value.txt"]',
  'scope: { allow: ["src/**"] }',
  'checks:',
  '  - { name: value, run: "test $(cat src/value.txt) = 2" }',
  'limits: { iterations: 2 }',
  '',
].join('\n');

/** The spec a run was started with, from its first event in Temporal's history (what the worker really got). */
export async function startedSpec(client: Client, id: string): Promise<Record<string, any>> {
  const history = await client.workflow.getHandle(id).fetchHistory();
  const payload = history.events![0].workflowExecutionStartedEventAttributes!.input!.payloads![0];
  return JSON.parse(Buffer.from(payload.data!).toString('utf8')).spec;
}
