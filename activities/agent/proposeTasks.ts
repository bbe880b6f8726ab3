import { buildPlanningPrompt, parseTaskList, TASK_LIST_FILE, TASK_LIST_MAX_BYTES } from '../../agents/planning';
import type { ActivityDeps } from '../../runtime/deps';
import { throwIfCancelled, withHeartbeat } from '../../runtime/heartbeat';
import type { Sandbox } from '../../sandbox/sandbox';
import type { ProposeTasksInput, ProposeTasksOutput } from '../../contracts/plan';
import { runAgentCli } from './agentCli';
import { repoInstructions } from './runAgent';
import { workspaceAt } from './workspaceAt';

/**
 * A `tasks: auto` plan's planning turn: the agent reads the workspace and writes the task list; the list is read
 * back through the sandbox (a link in it reaches only what the sandbox sees, never the worker's files), judged by
 * the schema and the graph's rules, and every file the agent wrote is discarded.
 */
export function proposeTasks(deps: ActivityDeps) {
  return async (input: ProposeTasksInput): Promise<ProposeTasksOutput> => {
    return withHeartbeat(async () => {
      const { sandbox, repo, branch } = await workspaceAt(deps, input, input.baseCommit);
      // An earlier attempt's list (kept should the repo ignore the folder) is never taken for this one's.
      await inSandbox(sandbox, ['rm', '-rf', '--', TASK_LIST_FILE]);
      const prompt = buildPlanningPrompt({
        title: input.title,
        goal: input.goal,
        maxTasks: input.maxTasks,
        instructions: await repoInstructions(repo.git, input.baseCommit),
        feedback: input.feedback,
      });
      const cli = await runAgentCli(deps, sandbox, {
        ...input,
        prompt,
        promptName: 'planning.md',
        header: `planning, attempt ${input.iteration}`,
      });
      throwIfCancelled();
      const written = await inSandbox(sandbox, ['head', '-c', String(TASK_LIST_MAX_BYTES + 1), '--', TASK_LIST_FILE]);
      const listed =
        written !== undefined && Buffer.byteLength(written) > TASK_LIST_MAX_BYTES
          ? { problems: [`${TASK_LIST_FILE} is larger than ${TASK_LIST_MAX_BYTES / 1024} KiB`] }
          : parseTaskList(written, input.maxTasks);
      const discarded = await repo.touched();
      if (discarded.length) await repo.layOut(branch, input.baseCommit);
      const { modelUsage, budgetExhausted, budgetUntil: _until, ...result } = cli;
      return {
        ...listed,
        result: { ...result, changedFiles: [], worker: deps.self.worker },
        ...(modelUsage ? { modelUsage } : {}),
        ...(budgetExhausted ? { budgetExhausted } : {}),
      };
    });
  };
}

/** A command's stdout in the sandbox, as the agent's own processes would see it; undefined when it failed. */
async function inSandbox(sandbox: Sandbox, cmd: string[]): Promise<string | undefined> {
  let out = '';
  const done = await sandbox.exec({
    cmd,
    // A FIFO or a huge file cannot hold the stage: the read is short or given up.
    timeoutMs: 15_000,
    onOutput: (chunk, stream) => {
      if (stream === 'stdout') out += chunk;
    },
  });
  return done.exitCode === 0 ? out : undefined;
}
