import type { WorkflowStartOptions } from '@temporalio/client';
import type { Config } from '../config';
import type { specRun } from '../workflows/specRun';
import { runSearchAttributes } from '../workflows/searchAttributes';
import type { RunInput } from '../contracts/run';

/** Start options shared by a submit and a schedule's action: queue, search attributes, what Temporal Web shows. */
export function runStartOptions(
  input: RunInput,
  config: Config,
): Pick<
  WorkflowStartOptions<typeof specRun>,
  'taskQueue' | 'args' | 'typedSearchAttributes' | 'staticSummary' | 'staticDetails'
> {
  const { spec } = input;
  return {
    taskQueue: config.taskQueue,
    args: [input],
    typedSearchAttributes: runSearchAttributes(spec),
    staticSummary: spec.title,
    staticDetails: [
      `**repo** ${spec.repo}${spec.base ? ` @ ${spec.base}` : ''}`,
      `**agent** ${spec.agent.kind}${spec.agent.command ? ` \`${spec.agent.command.join(' ')}\`` : ''}`,
      `**checks** ${spec.checks.map((c) => c.name).join(', ') || 'none'}`,
      `**submitted by** ${input.submittedBy}`,
      `Approve with the **approve** signal, input \`{"comment": "…"}\`.`,
    ].join('\n\n'),
  };
}
