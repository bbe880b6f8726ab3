import { Context } from '@temporalio/activity';
import type { ExecResult, Sandbox } from '../sandbox/sandbox';
import type { Check } from '../spec/schema';
import type { ChecksInput } from '../contracts/checks';
import type { ActivityDeps } from '../runtime/deps';
import type { RunRepo } from '../git/git';
import { layBaseHarness } from './harness';
import { throwIfCancelled } from '../runtime/heartbeat';
import { removeStaleJunit } from './junit';
import { egressLine, headerCommand } from '../workspaces/commandLog';
import { Redactor } from '../secrets/redact';
import { inCheckoutSandbox } from '../workspaces/environments';

// Where a check runs (docs/checks.md, "Checks see only the change"): never in the agent's own sandbox, where what it
// left outside git (a fake `node` in an ignored node_modules/.bin, a ~/.npmrc with node-options, a marker in /tmp
// from an earlier run) would run with the check. Each run of a check gets a sandbox of its own on a fresh checkout
// of the checkpoint commit, with the environment's layers mounted afresh and the base's harness laid over.

/** A run of the checks: what every one of its sandboxes needs. */
export interface CheckSite {
  deps: ActivityDeps;
  input: ChecksInput;
  secrets: Record<string, string>;
}

/** One run of a check's command in a sandbox, its output to `onOutput`; a timeout or limit noted there too. */
export async function execCheck(
  sandbox: Sandbox,
  check: Check,
  input: ChecksInput,
  env: Record<string, string>,
  onOutput: (text: string, stream?: 'stdout' | 'stderr') => void,
): Promise<ExecResult> {
  const timeoutMs = check.timeout ?? input.timeoutMs;
  if (check.junit) await removeStaleJunit(sandbox.workspace, check.junit);
  const exec = await sandbox.exec({
    cmd: ['sh', '-c', check.run],
    env,
    timeoutMs,
    signal: Context.current().cancellationSignal,
    onOutput,
    onEgress: (d) => onOutput(egressLine(d)),
  });
  if (exec.timedOut) onOutput(`\n[nightshift: check killed after ${Math.round(timeoutMs / 1000)}s]\n`);
  if (exec.limitHit) onOutput(`\n[nightshift: the check ran into a sandbox limit: ${exec.limitHit}]\n`);
  throwIfCancelled();
  return exec;
}

/**
 * `work` in a sandbox of its own (`<run>-<suffix>`) on a fresh checkout of the checkpoint: the committed tree only
 * (no untracked or ignored file of the agent's), a fresh home and /tmp, the environment's pristine layers, and the
 * base's harness laid over (what was laid is passed on, for the log). Removed afterwards, whatever happened.
 */
export async function freshCheckSandbox<T>(
  site: CheckSite,
  suffix: string,
  work: (sandbox: Sandbox, repo: RunRepo, laid: string[]) => Promise<T>,
): Promise<T> {
  const { deps, input } = site;
  return inCheckoutSandbox(
    deps,
    input.runId,
    suffix,
    input.sandbox,
    input.checkpoint.commit,
    async (sandbox, repo) => {
      const laid = input.baseCommit
        ? await layBaseHarness(repo, input.baseCommit, input.checkpoint.commit, input.harness)
        : [];
      return work(sandbox, repo, laid);
    },
    { environment: input.environment, over: input.baseCommit },
  );
}

/**
 * Another run of `check` (the base's tests, the canary) in a fresh check sandbox of its own, so nothing an earlier
 * run left (a marker that says "this is the second run") reaches it. `prepare` lays its files over first; the checks
 * before it in the spec run again before it (a test that needs the build's output), as they did in the normal run.
 */
export async function rerunFresh<T>(
  site: CheckSite,
  check: Check,
  suffix: string,
  prepare: (repo: RunRepo) => Promise<void>,
  work: (sandbox: Sandbox, repo: RunRepo) => Promise<T>,
): Promise<T> {
  const { deps, input, secrets } = site;
  return freshCheckSandbox(site, `${suffix}-${check.name}`, async (sandbox, repo) => {
    await prepare(repo);
    for (const before of input.checks.slice(
      0,
      input.checks.findIndex((c) => c.name === check.name),
    )) {
      if (before.holdout !== undefined) continue;
      const exec = await execCheck(sandbox, before, input, secrets, () => undefined);
      await deps.runLog.append(
        input.runId,
        new Redactor(secrets).redact(
          `[nightshift: before the ${suffix} run of check ${check.name}, check ${before.name} ran again in its sandbox (\`${headerCommand(before.run)}\`, exit ${exec.exitCode ?? 'on a signal'})]\n`,
        ),
      );
    }
    return work(sandbox, repo);
  });
}
