import { Context } from '@temporalio/activity';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { adapterFor } from '../agents';
import { buildPrompt } from '../agents/prompt';
import { META_DIR } from '../sandbox/environment';
import type { GatewayUsage } from '../sandbox/gateway';
import type { Spec } from '../spec/schema';
import type { AgentResult, Checkpoint } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { git } from './git';
import { throwIfCancelled, withHeartbeat } from './heartbeat';
import { CommandLog, egressLine, Transcript } from './logs';
import { gatewayLine, MODEL_BASE_URL, modelKey, startModelGateway } from './model';
import { openSandbox, sandboxRoot } from './workspace';

export interface AgentInput {
  runId: string;
  title: string;
  task: string;
  agent: Spec['agent'];
  scope: Spec['scope'];
  checks: Spec['checks'];
  iteration: number;
  feedback?: string;
  baseCommit: string;
  /** The workspace is reset to this before the agent starts, so a retried iteration never applies twice. */
  checkpoint?: Checkpoint;
  timeoutMs: number;
  sandbox: Spec['sandbox'];
  /** Names only: values are resolved here, on the worker, and never leave it. */
  secrets: string[];
  limits: Spec['limits'];
  /** Model usage of the run's earlier iterations, which its budget counts too. */
  modelUsage?: GatewayUsage;
}

export interface AgentOutput {
  result: AgentResult;
  diffId: string;
  checkpoint: Checkpoint;
  /** Model usage of the run so far, as the gateway metered it. */
  modelUsage?: GatewayUsage;
  /** Set when the gateway refused a request: the run's model budget is spent. */
  budgetExhausted?: string;
}


export function agentActivities(deps: ActivityDeps) {
  return {
    /** One agent iteration in the sandbox; its changes become a commit on the run's branch and a checkpoint. */
    async runAgent(input: AgentInput): Promise<AgentOutput> {
      const adapter = adapterFor(input.agent.kind);
      return withHeartbeat(async () => {
        const sandbox = await openSandbox(deps, input.runId, input.sandbox);
        const ws = sandbox.workspace;
        const start = input.checkpoint?.commit ?? input.baseCommit;
        await git(ws, ['reset', '--quiet', '--hard', start]);
        await git(ws, ['clean', '--quiet', '-fd']);
        const branch = (await git(ws, ['symbolic-ref', '--short', 'HEAD'])).trim();

        const prompt = buildPrompt({ ...input, instructions: await repoInstructions(ws, input.baseCommit) });
        const meta = path.join(sandboxRoot(deps, input.runId), 'meta');
        await fs.mkdir(meta, { recursive: true });
        await fs.writeFile(path.join(meta, 'prompt.md'), prompt);
        const secrets = deps.secrets.resolve(input.secrets, deps.self.worker);
        const key = modelKey(deps, input.agent);
        // The model key is redacted too, should anything ever echo it.
        const redacted = key ? { ...secrets, [key.name]: key.value } : secrets;
        const { cmd, env } = adapter.invocation({ agent: input.agent, prompt, promptFile: `${META_DIR}/prompt.md`, iteration: input.iteration, feedback: input.feedback, ...(key ? { modelBaseUrl: MODEL_BASE_URL } : {}) });
        const log = new CommandLog(deps.runLog, input.runId, `agent, iteration ${input.iteration}: ${adapter.kind === 'command' ? cmd.join(' ') : input.agent.kind}`, redacted);
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
              if (!reader || stream === 'stderr') return log.write(chunk);
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
        const { logId, logTail } = await log.close(deps.store);
        const transcriptId = await transcript?.close(deps.store);
        throwIfCancelled();

        // Whatever the agent left (committed or not) becomes one commit on the branch.
        await git(ws, ['add', '-A']);
        const staged = await git(ws, ['diff', '--cached', '--name-only']);
        if (staged.trim()) {
          await git(ws, ['commit', '--quiet', '--no-verify', '-m', `${input.title} (iteration ${input.iteration})\n\nNightshift-Run: ${input.runId}`]);
        }
        await git(ws, ['checkout', '--quiet', '-B', branch]);
        const commit = (await git(ws, ['rev-parse', 'HEAD'])).trim();
        const changedFiles = (await git(ws, ['diff', '--name-only', input.baseCommit, commit])).split('\n').filter(Boolean);
        const diffId = await deps.store.put(await git(ws, ['diff', '--binary', input.baseCommit, commit]));

        let bundleId: string | undefined;
        if (commit !== input.baseCommit) {
          const file = path.join(os.tmpdir(), `nightshift-${input.runId}-${process.pid}.bundle`);
          try {
            await git(ws, ['bundle', 'create', '--quiet', file, `refs/heads/${branch}`, `^${input.baseCommit}`]);
            bundleId = await deps.store.putFile(file);
          } finally {
            await fs.rm(file, { force: true });
          }
        }
        return {
          result: {
            command: adapter.kind === 'command' ? cmd.join(' ') : input.agent.kind,
            exitCode: exec.exitCode,
            timedOut: exec.timedOut,
            durationMs: exec.durationMs,
            logId,
            logTail,
            limitHit: exec.limitHit,
            changedFiles,
            ...(reader ? { summary: reader.summary(), transcriptId } : {}),
          },
          diffId,
          checkpoint: { commit, bundleId, afterStage: 'agent', iteration: input.iteration },
          ...(model ? { modelUsage: model.gateway.usage() } : {}),
          ...(budgetExhausted ? { budgetExhausted } : {}),
        };
      });
    },
  };
}

const INSTRUCTION_FILES = ['AGENTS.md', 'CLAUDE.md'];
const MAX_INSTRUCTIONS = 32 * 1024;

/** The repo's instructions for agents, as committed at the base: an earlier iteration's agent cannot rewrite them. */
async function repoInstructions(ws: string, baseCommit: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const file of INSTRUCTION_FILES) {
    const text = await git(ws, ['show', `${baseCommit}:${file}`]).catch(() => undefined);
    if (text?.trim()) found[file] = text.length > MAX_INSTRUCTIONS ? `${text.slice(0, MAX_INSTRUCTIONS)}\n[truncated]` : text;
  }
  return found;
}
