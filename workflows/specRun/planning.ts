// A `tasks: auto` plan's planning run (docs/plans.md): the agent proposes the tasks, its list is judged by the same
// rules as a submitted plan's, a refused list goes back to it as feedback; the run ends with the list, for a person.
import type { RunStatus } from '../../contracts/run';
import type { RunContext } from './context';
import { proposeTasksInput } from './inputs';
import { fail, stage } from './stages';
import { humanDuration, MINUTE, nowIso } from './time';
import { inWorkspace } from './workspace';

export async function proposeTasks(ctx: RunContext): Promise<RunStatus> {
  const { state, sandboxMs } = ctx;
  let feedback: string | undefined;
  for (;;) {
    state.iteration++;
    state.feedback = feedback;
    const proposed = await stage(
      ctx,
      'agent',
      'agent',
      () =>
        inWorkspace(ctx, sandboxMs + 5 * MINUTE, `planning, attempt ${state.iteration}`, (a) =>
          a.proposeTasks(proposeTasksInput(ctx, feedback)),
        ),
      (p) => (p.tasks ? [true, `${p.tasks.length} tasks proposed`] : [false, p.problems![0]]),
    );
    state.agent = proposed.result;
    if (proposed.modelUsage) state.modelUsage = proposed.modelUsage;
    if (proposed.tasks) {
      state.proposal = { tasks: proposed.tasks, by: 'agent', at: nowIso() };
      return 'succeeded';
    }
    if (proposed.budgetExhausted) fail(ctx, 'agent', proposed.budgetExhausted);
    if (proposed.result.timedOut) fail(ctx, 'agent', `agent timed out after ${humanDuration(sandboxMs)}`);
    const problems = proposed.problems!.join('; ');
    if (state.iteration >= state.maxIterations) fail(ctx, 'agent', `no task list the plan can run: ${problems}`);
    feedback = proposed.problems!.map((p) => `- ${p}`).join('\n');
  }
}
