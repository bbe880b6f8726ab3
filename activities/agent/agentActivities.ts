import { Context } from '@temporalio/activity';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { adapterFor } from '../../agents';
import { agentTool } from '../../agents/cli';
import type { AgentSummary, GatewayUsage, AgentResult } from '../../contracts/run';
import { buildPrompt } from '../../agents/prompt';
import { buildReviewPrompt, parseReviewVerdict } from '../../agents/review';
import { META_DIR } from '../../sandbox/layout';
import type { Sandbox } from '../../sandbox/sandbox';
import type { Spec } from '../../spec/schema';
import type { ActivityDeps } from '../../runtime/deps';
import { secretFindings } from '../../judge/diffRules';
import { harnessChanges, harnessFindings } from '../../judge/harness';
import type { Git, RunRepo } from '../../git/git';
import { throwIfCancelled, withHeartbeat } from '../../runtime/heartbeat';
import { CommandLog, commandResult, egressLine, headerCommand, Transcript } from '../../workspaces/commandLog';
import { gatewayLine, startModelGateway } from '../../gateway/runGateway';
import { MODEL_BASE_URL, modelKey } from '../../gateway/vendors';
import { Redactor } from '../../secrets/redact';
import { openSandbox, runRepo, sandboxRoot, storeBranchBundle } from '../../workspaces/sandboxes';
import type { AgentReviewInput, AgentReview, AgentInput, AgentOutput, CliRun } from '../../contracts/agent';


export function agentActivities(deps: ActivityDeps) {
  return {
    /** A second, read-only agent pass over the diff; its verdict and findings join the rule review's. */
    async reviewWithAgent(input: AgentReviewInput): Promise<AgentReview> {
      return withHeartbeat(async () => {
        const { sandbox, repo, branch } = await workspaceAt(deps, input, input.commit);
        const diff = (await deps.store.get(input.diffId)).toString('utf8');
        const prompt = buildReviewPrompt({ title: input.title, task: input.task, diff });
        const cli = await runAgentCli(deps, sandbox, { ...input, prompt, promptName: 'review.md', header: `agent review, iteration ${input.iteration}` });
        throwIfCancelled();
        // The reviewer only reads: whatever it wrote is discarded, and the report says so.
        const touched = await repo.touched();
        if (touched.length) await repo.layOut(branch, input.commit);
        const { verdict, findings } = parseReviewVerdict(cli.summary?.finalMessage ?? cli.logTail);
        const report = { verdict, findings, reviewer: { kind: input.agent.kind, model: input.agent.model, summary: cli.summary, exitCode: cli.exitCode, logId: cli.logId, transcriptId: cli.transcriptId }, discardedWrites: touched };
        return {
          verdict,
          findings,
          reportId: await deps.store.put(JSON.stringify(report, null, 2)),
          ...(cli.modelUsage ? { modelUsage: cli.modelUsage } : {}),
          ...(cli.budgetExhausted ? { budgetExhausted: cli.budgetExhausted } : {}),
        };
      });
    },

    /** One agent iteration in the sandbox; its changes become a commit on the run's branch and a checkpoint. */
    async runAgent(input: AgentInput): Promise<AgentOutput> {
      return withHeartbeat(async () => {
        const { sandbox, repo, branch } = await workspaceAt(deps, input, input.checkpoint?.commit ?? input.baseCommit);

        const prompt = buildPrompt({ ...input, instructions: await repoInstructions(repo.git, input.baseCommit) });
        const cli = await runAgentCli(deps, sandbox, { ...input, prompt, header: `agent, iteration ${input.iteration}`, promptName: 'prompt.md' });
        throwIfCancelled();

        // Whatever the agent left becomes one commit on the branch, made by the worker from the files alone (what
        // the agent committed in its own .git is ignored); after a conflicted rebase it replaces the commit that held
        // the conflict markers, so no commit on the branch carries them.
        if (input.checkpoint?.conflicts?.length) await repo.git(['reset', '--quiet', '--soft', input.baseCommit]);
        const commit = await repo.commitWorkspace(`${input.title} (iteration ${input.iteration})\n\nNightshift-Run: ${input.runId}\nNightshift-Title: ${input.title.replace(/\s+/g, ' ')}`);
        // A secret the agent wrote into the change is a finding for the review, and is blanked wherever the
        // change is shown (the diff, the changed files in the run's state).
        const secrets = deps.secrets.resolve(input.secrets, deps.self.worker);
        const redactor = new Redactor(secrets);
        const diff = await repo.diff(input.baseCommit, commit);
        const secretsAdded = secretFindings(diff, secrets);
        const changed = await repo.changedFiles(input.baseCommit, commit);
        const harnessChanged = harnessFindings(await harnessChanges(repo.git, input.baseCommit, commit, changed, input.harness)).map((f) => ({ ...f, file: redactor.redact(f.file!), message: redactor.redact(f.message) }));
        const changedFiles = changed.map((f) => redactor.redact(f));
        const diffId = await deps.store.put(redactor.redact(diff));

        const bundleId = await storeBranchBundle(deps, repo.git, branch, input.baseCommit, input.runId);
        const { modelUsage, budgetExhausted, ...result } = cli;
        const image = await deps.drivers[input.sandbox.driver]?.image();
        return {
          result: { ...result, changedFiles, tool: await agentTool(input.agent.kind), ...(image ? { image } : {}), worker: deps.self.worker, ...(secretsAdded.length ? { secretFindings: secretsAdded } : {}), ...(harnessChanged.length ? { harnessFindings: harnessChanged } : {}) },
          diffId,
          checkpoint: { commit, bundleId, afterStage: 'agent', iteration: input.iteration },
          ...(modelUsage ? { modelUsage } : {}),
          ...(budgetExhausted ? { budgetExhausted } : {}),
        };
      });
    },
  };
}

/** The run's sandbox, its workspace laid out at `commit` on the run's branch (so a retried attempt starts over). */
async function workspaceAt(deps: ActivityDeps, input: { runId: string; sandbox: Spec['sandbox'] }, commit: string): Promise<{ sandbox: Sandbox; repo: RunRepo; branch: string }> {
  const sandbox = await openSandbox(deps, input.runId, input.sandbox);
  const repo = runRepo(deps, sandbox);
  const branch = await repo.branch();
  await repo.layOut(branch, commit);
  return { sandbox, repo, branch };
}

const INSTRUCTION_FILES = ['AGENTS.md', 'CLAUDE.md'];
const MAX_INSTRUCTIONS = 32 * 1024;

/** The repo's instructions for agents, as committed at the base: an earlier iteration's agent cannot rewrite them. */
async function repoInstructions(git: Git, baseCommit: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const file of INSTRUCTION_FILES) {
    const text = await git(['show', `${baseCommit}:${file}`]).catch(() => undefined);
    if (text?.trim()) found[file] = text.length > MAX_INSTRUCTIONS ? `${text.slice(0, MAX_INSTRUCTIONS)}\n[truncated]` : text;
  }
  return found;
}

/** The summary goes into the run's state (and Temporal's history): its final message is redacted like the log. */
function redactedSummary(summary: AgentSummary, secrets: Record<string, string>): AgentSummary {
  return summary.finalMessage === undefined ? summary : { ...summary, finalMessage: new Redactor(secrets).redact(summary.finalMessage) };
}

/**
 * One run of the agent in the sandbox: its model gateway, its secrets, its output read into the log and the
 * transcript. The caller decides what its changes mean.
 */
async function runAgentCli(deps: ActivityDeps, sandbox: Sandbox, input: CliRun): Promise<Omit<AgentResult, 'changedFiles'> & { modelUsage?: GatewayUsage; budgetExhausted?: string }> {
  const adapter = adapterFor(input.agent.kind);
  const meta = path.join(sandboxRoot(deps, input.runId), 'meta');
  await fs.mkdir(meta, { recursive: true });
  await fs.writeFile(path.join(meta, input.promptName), input.prompt);
  const secrets = deps.secrets.resolve(input.secrets, deps.self.worker);
  const key = modelKey(deps, input.agent);
  // The model key is redacted too, should anything ever echo it.
  const redacted = key ? { ...secrets, [key.name]: key.value } : secrets;
  const { cmd, env } = adapter.invocation({ agent: input.agent, prompt: input.prompt, promptFile: `${META_DIR}/${input.promptName}`, iteration: input.iteration, feedback: input.feedback, ...(key ? { modelBaseUrl: MODEL_BASE_URL } : {}) });
  const command = adapter.kind === 'command' ? cmd.join(' ') : input.agent.kind;
  const log = new CommandLog(deps.runLog, input.runId, `${input.header}: ${headerCommand(command)}`, redacted);
  const reader = adapter.reader?.();
  const transcript = reader && new Transcript(redacted);
  const model = key && (await startModelGateway(deps, { agent: input.agent, limits: input.limits, usage: input.modelUsage, root: sandboxRoot(deps, input.runId), apiKey: key.value }, (r) => log.write(gatewayLine(r))));
  const exec = await sandbox
    .exec({
      cmd,
      env: { ...env, ...secrets, ...model?.env },
      timeoutMs: input.timeoutMs,
      signal: Context.current().cancellationSignal,
      onOutput: (chunk, stream) => {
        // A CLI's event stream is on stdout; the log shows it read, the transcript keeps it raw.
        if (!reader || stream === 'stderr') return log.write(chunk, stream);
        transcript!.write(chunk);
        log.write(reader.push(chunk));
      },
      onEgress: (d) => log.write(egressLine(d)),
      modelGateway: Boolean(model),
    })
    .finally(() => model?.gateway.close());
  const budgetExhausted = model?.refused();
  if (budgetExhausted) log.write(`\n[nightshift: the run's model budget is spent: ${budgetExhausted}]\n`);
  if (exec.cancelled) log.write('\n[nightshift: agent cancelled]\n');
  if (exec.timedOut) log.write(`\n[nightshift: agent killed after ${Math.round(input.timeoutMs / 1000)}s]\n`);
  if (exec.limitHit) log.write(`\n[nightshift: the agent ran into a sandbox limit: ${exec.limitHit}]\n`);
  const closed = await log.close(deps.store);
  const transcriptId = await transcript?.close(deps.store);
  return {
    ...commandResult(command, exec, closed),
    ...(reader ? { summary: redactedSummary(reader.summary(), redacted), transcriptId } : {}),
    ...(model ? { modelUsage: model.gateway.usage() } : {}),
    ...(budgetExhausted ? { budgetExhausted } : {}),
  };
}
