import { Context } from '@temporalio/activity';
import type { Check, Spec } from '../spec/schema';
import type { CheckResult, Checkpoint } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { throwIfCancelled, withHeartbeat } from './heartbeat';
import { junitCounts, readJunit, type JunitCounts } from './junit';
import { runHoldoutCheck } from './holdout';
import { CommandLog, commandResult, egressLine } from './logs';
import { layBaseHarness, type HarnessSpec } from './harness';
import { Redactor } from './redact';
import { openSandbox, runRepo } from './workspace';

export interface ChecksInput {
  runId: string;
  checks: Check[];
  iteration: number;
  checkpoint: Checkpoint;
  /** Per check, unless the check sets its own. */
  timeoutMs: number;
  sandbox: Spec['sandbox'];
  /** Names only, as for the agent. */
  secrets: string[];
  /** The base the run's change is against: the checks run its harness (activities/harness.ts). Absent in old histories. */
  baseCommit?: string;
  harness?: HarnessSpec;
}

/** A check's JUnit report, its counts, or why there are none. */
async function junitResult(workspace: string, file: string): Promise<{ xml: string; counts: JunitCounts; problem?: undefined } | { problem: string; counts?: undefined }> {
  const read = await readJunit(workspace, file);
  if ('problem' in read) return read;
  const counts = junitCounts(read.xml);
  return counts ? { xml: read.xml, counts } : { problem: `${file} is not a JUnit XML report` };
}

export function checkActivities(deps: ActivityDeps) {
  return {
    /** Run every check in the sandbox, in order; all run, so the agent gets every failure at once. */
    async runChecks(input: ChecksInput): Promise<CheckResult[]> {
      return withHeartbeat(async () => {
        const sandbox = await openSandbox(deps, input.runId, input.sandbox);
        const secrets = deps.secrets.resolve(input.secrets, deps.self.worker);
        if (input.baseCommit) {
          const laid = await layBaseHarness(runRepo(deps, sandbox), input.baseCommit, input.checkpoint.commit, input.harness);
          if (laid.length) await deps.runLog.append(input.runId, new Redactor(secrets).redact(`\n[nightshift: the checks run the base's test harness, not the agent's: ${laid.join('; ')}]\n`));
        }
        const results: CheckResult[] = [];
        for (const check of input.checks) {
          if (check.holdout !== undefined) {
            results.push(await runHoldoutCheck(deps, input, { ...check, holdout: check.holdout }));
            continue;
          }
          const timeoutMs = check.timeout ?? input.timeoutMs;
          const log = new CommandLog(deps.runLog, input.runId, `check ${check.name}, iteration ${input.iteration}: ${check.run}`, secrets);
          const exec = await sandbox.exec({
            cmd: ['sh', '-c', check.run],
            env: secrets,
            timeoutMs,
            signal: Context.current().cancellationSignal,
            onOutput: (chunk, stream) => log.write(chunk, stream),
            onEgress: (d) => log.write(egressLine(d)),
          });
          if (exec.timedOut) log.write(`\n[nightshift: check killed after ${Math.round(timeoutMs / 1000)}s]\n`);
          if (exec.limitHit) log.write(`\n[nightshift: the check ran into a sandbox limit: ${exec.limitHit}]\n`);
          const passed = exec.exitCode === 0 && !exec.timedOut;
          const junit = check.junit ? await junitResult(sandbox.workspace, check.junit) : undefined;
          if (junit?.problem) log.write(`[nightshift: ${junit.problem}]\n`);
          if (junit?.counts) log.write(`[nightshift: JUnit ${check.junit}: ${junit.counts.tests} tests, ${junit.counts.failures} failures, ${junit.counts.errors} errors, ${junit.counts.skipped} skipped]\n`);
          log.write(`[nightshift: check ${check.name} ${passed ? 'passed' : 'failed'}${exec.exitCode !== null ? ` (exit ${exec.exitCode})` : ''}]\n`);
          const closed = await log.close(deps.store);
          throwIfCancelled();
          results.push({
            ...commandResult(check.run, exec, closed),
            name: check.name,
            passed,
            ...(junit?.counts ? { junit: { ...junit.counts, reportId: await deps.store.put(junit.xml) } } : {}),
          });
        }
        return results;
      });
    },
  };
}
