import { agentTool } from '../../agents/cli';
import { buildPrompt } from '../../agents/prompt';
import type { ActivityDeps } from '../../runtime/deps';
import { secretFindings } from '../../judge/diffRules';
import { harnessChanges, harnessFindings } from '../../judge/harness';
import type { Git } from '../../git/git';
import { throwIfCancelled, withHeartbeat } from '../../runtime/heartbeat';
import { Redactor } from '../../secrets/redact';
import { storeBranchBundle } from '../../workspaces/sandboxes';
import type { AgentInput, AgentOutput } from '../../contracts/agent';
import { runAgentCli } from './agentCli';
import { workspaceAt } from './workspaceAt';

/** One agent iteration in the sandbox; its changes become a commit on the run's branch and a checkpoint. */
export function runAgent(deps: ActivityDeps) {
  return async (input: AgentInput): Promise<AgentOutput> => {
    return withHeartbeat(async () => {
      const { sandbox, repo, branch } = await workspaceAt(deps, input, input.checkpoint?.commit ?? input.baseCommit);

      const cli = input.skipAgent
        ? await skippedAgent(deps, input.runId, input.skipAgent)
        : await runAgentCli(deps, sandbox, {
            ...input,
            prompt: buildPrompt({ ...input, instructions: await repoInstructions(repo.git, input.baseCommit) }),
            header: `agent, iteration ${input.iteration}`,
            promptName: 'prompt.md',
          });
      throwIfCancelled();

      // Whatever the agent left becomes one commit on the branch, made by the worker from the files alone (what
      // the agent committed in its own .git is ignored); after a conflicted rebase it replaces the commit that held
      // the conflict markers, so no commit on the branch carries them.
      if (input.checkpoint?.conflicts?.length) await repo.git(['reset', '--quiet', '--soft', input.baseCommit]);
      const commit = await repo.commitWorkspace(
        `${input.title} (iteration ${input.iteration})\n\nNightshift-Run: ${input.runId}\nNightshift-Title: ${input.title.replace(/\s+/g, ' ')}`,
      );
      // A secret the agent wrote into the change is a finding for the review, and is blanked wherever the
      // change is shown (the diff, the changed files in the run's state).
      const secrets = deps.secrets.resolve(input.secrets, deps.self.worker);
      const redactor = new Redactor(secrets);
      const diff = await repo.diff(input.baseCommit, commit);
      const secretsAdded = secretFindings(diff, secrets);
      const changed = await repo.changedFiles(input.baseCommit, commit);
      const harnessChanged = harnessFindings(
        await harnessChanges(repo.git, input.baseCommit, commit, changed, input.harness),
      ).map((f) => ({ ...f, file: redactor.redact(f.file!), message: redactor.redact(f.message) }));
      const changedFiles = changed.map((f) => redactor.redact(f));
      const diffId = await deps.store.put(redactor.redact(diff));

      const bundleId = await storeBranchBundle(deps, repo.git, branch, input.baseCommit, input.runId);
      const { modelUsage, budgetExhausted, budgetUntil, ...result } = cli;
      const image = await deps.drivers[input.sandbox.driver]?.image(input.sandbox);
      return {
        result: {
          ...result,
          changedFiles,
          // An iteration with no agent names none: the proof's provenance must not claim one ran.
          ...(input.skipAgent ? {} : { tool: await agentTool(input.agent.kind) }),
          ...(image ? { image } : {}),
          worker: deps.self.worker,
          ...(secretsAdded.length ? { secretFindings: secretsAdded } : {}),
          ...(harnessChanged.length ? { harnessFindings: harnessChanged } : {}),
        },
        diffId,
        checkpoint: { commit, bundleId, afterStage: 'agent', iteration: input.iteration },
        ...(modelUsage ? { modelUsage } : {}),
        ...(budgetExhausted ? { budgetExhausted } : {}),
        ...(budgetUntil ? { budgetUntil } : {}),
      };
    });
  };
}

/** An iteration with no agent: a result that says why, in the run's log too. */
async function skippedAgent(deps: ActivityDeps, runId: string, why: string): ReturnType<typeof runAgentCli> {
  const line = `no agent in this iteration: ${why}`;
  await deps.runLog.append(runId, `\n=== ${line} ===\n`);
  const logId = await deps.store.put(line);
  return { command: '(none)', exitCode: 0, timedOut: false, durationMs: 0, logId, logTail: line };
}

const INSTRUCTION_FILES = ['AGENTS.md', 'CLAUDE.md'];
const MAX_INSTRUCTIONS = 32 * 1024;

/** The repo's instructions for agents, as committed at the base: an earlier iteration's agent cannot rewrite them. */
export async function repoInstructions(git: Git, baseCommit: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const file of INSTRUCTION_FILES) {
    const text = await git(['show', `${baseCommit}:${file}`]).catch(() => undefined);
    if (text?.trim())
      found[file] = text.length > MAX_INSTRUCTIONS ? `${text.slice(0, MAX_INSTRUCTIONS)}\n[truncated]` : text;
  }
  return found;
}
