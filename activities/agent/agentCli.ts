import { Context } from '@temporalio/activity';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { adapterFor } from '../../agents';
import type { AgentSummary, GatewayUsage, AgentResult } from '../../contracts/run';
import { META_DIR } from '../../sandbox/layout';
import type { Sandbox } from '../../sandbox/sandbox';
import type { ActivityDeps } from '../../runtime/deps';
import { CommandLog, commandResult, egressLine, headerCommand, Transcript } from '../../workspaces/commandLog';
import { gatewayLine, startModelGateway } from '../../gateway/runGateway';
import { MODEL_BASE_URL, modelKey } from '../../gateway/vendors';
import { Redactor } from '../../secrets/redact';
import { sandboxRoot } from '../../workspaces/sandboxes';
import { notFoundInSandbox } from '../../sandbox/toolchains';
import type { CliRun } from '../../contracts/agent';

/** The summary goes into the run's state (and Temporal's history): its final message is redacted like the log. */
function redactedSummary(summary: AgentSummary, secrets: Record<string, string>): AgentSummary {
  return summary.finalMessage === undefined
    ? summary
    : { ...summary, finalMessage: new Redactor(secrets).redact(summary.finalMessage) };
}

/**
 * One run of the agent in the sandbox: its model gateway, its secrets, its output read into the log and the
 * transcript. The caller decides what its changes mean.
 */
export async function runAgentCli(
  deps: ActivityDeps,
  sandbox: Sandbox,
  input: CliRun,
): Promise<
  Omit<AgentResult, 'changedFiles'> & { modelUsage?: GatewayUsage; budgetExhausted?: string; budgetUntil?: number }
> {
  const adapter = adapterFor(input.agent.kind);
  const meta = path.join(sandboxRoot(deps, input.runId), 'meta');
  await fs.mkdir(meta, { recursive: true });
  await fs.writeFile(path.join(meta, input.promptName), input.prompt);
  const secrets = deps.secrets.resolve(input.secrets, deps.self.worker);
  const key = modelKey(deps, input.agent);
  // The model key is redacted too, should anything ever echo it.
  const redacted = key ? { ...secrets, [key.name]: key.value } : secrets;
  const { cmd, env } = adapter.invocation({
    agent: input.agent,
    prompt: input.prompt,
    promptFile: `${META_DIR}/${input.promptName}`,
    iteration: input.iteration,
    feedback: input.feedback,
    ...(key ? { modelBaseUrl: MODEL_BASE_URL } : {}),
  });
  const command = adapter.kind === 'command' ? cmd.join(' ') : input.agent.kind;
  const log = new CommandLog(deps.runLog, input.runId, `${input.header}: ${headerCommand(command)}`, redacted);
  const reader = adapter.reader?.();
  const transcript = reader && new Transcript(redacted);
  const model =
    key &&
    (await startModelGateway(
      deps,
      {
        agent: input.agent,
        limits: input.limits,
        usage: input.modelUsage,
        spender: input.spender,
        root: sandboxRoot(deps, input.runId),
        apiKey: key.value,
      },
      (r) => log.write(gatewayLine(r)),
    ));
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
  const budgetUntil = model?.refusedUntil();
  const whose = budgetUntil ? 'a model budget above the run' : "the run's model budget";
  if (budgetExhausted) log.write(`\n[nightshift: ${whose} is spent: ${budgetExhausted}]\n`);
  if (exec.cancelled) log.write('\n[nightshift: agent cancelled]\n');
  if (exec.timedOut) log.write(`\n[nightshift: agent killed after ${Math.round(input.timeoutMs / 1000)}s]\n`);
  if (exec.limitHit) log.write(`\n[nightshift: the agent ran into a sandbox limit: ${exec.limitHit}]\n`);
  // An agent (or the shell running it) that exited 127 on a command its sandbox lacks: said as setup and checks say it.
  const notFound = notFoundInSandbox(exec.exitCode, log.text(), Object.keys(deps.toolchains));
  if (notFound) log.write(`\n[nightshift: ${notFound}]\n`);
  const closed = await log.close(deps.store);
  const transcriptId = await transcript?.close(deps.store);
  return {
    ...commandResult(command, exec, closed),
    ...(notFound ? { notFound } : {}),
    ...(reader ? { summary: redactedSummary(reader.summary(), redacted), transcriptId } : {}),
    ...(model ? { modelUsage: model.gateway.usage() } : {}),
    ...(budgetExhausted ? { budgetExhausted } : {}),
    ...(budgetUntil ? { budgetUntil } : {}),
  };
}
