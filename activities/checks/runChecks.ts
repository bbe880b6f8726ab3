import type { Sandbox } from '../../sandbox/sandbox';
import type { Check } from '../../spec/schema';
import type { CheckIntegrity, CheckResult } from '../../contracts/run';
import {
  baselineFile,
  baselineFindings,
  NO_COUNTS,
  readBaseline,
  unverifiedReason,
  writeBaseline,
  type Baseline,
} from '../../judge/baseline';
import {
  canaryFindings,
  canaryVerdict,
  describeVerdict,
  outcomeOf,
  plantCanaries,
  removeCanaries,
  testFilesAt,
  testOutcome,
  type CanaryRun,
  type CanaryVerdict,
  type TestOutcome,
} from '../../judge/canary';
import type { ActivityDeps } from '../../runtime/deps';
import { withHeartbeat } from '../../runtime/heartbeat';
import { junitCounts } from '../../judge/junit';
import { runHoldoutCheck } from '../../judge/holdout';
import { CommandLog, commandPassed, commandResult, headerCommand } from '../../workspaces/commandLog';
import { judgeByBaseTests, testChanges } from '../../judge/baseTests';
import type { RunRepo } from '../../git/git';
import { execCheck, freshCheckSandbox, rerunFresh, type CheckSite } from '../../judge/checkRun';
import { Redactor } from '../../secrets/redact';
import { checkTally, ran, type TestTally } from '../../judge/tally';
import { inCheckoutSandbox } from '../../workspaces/environments';
import { openSandbox, runRepo } from '../../workspaces/sandboxes';
import type { ChecksInput } from '../../contracts/checks';
import { notFoundInSandbox } from '../../sandbox/toolchains';

/** What the tests did, for the log: "12 tests ran, 2 failed, 1 skipped (JUnit)". */
function describeTally(t: TestTally | undefined): string {
  if (!t) return `no test counts (${NO_COUNTS})`;
  return `${ran(t)} tests ran, ${t.failed} failed, ${t.skipped} skipped (${t.format === 'junit' || (!t.format && t.cases) ? 'JUnit' : (t.format ?? 'summary line')}${t.cases ? ', by name' : ''})`;
}

const holdsBaseline = (check: Check) => check.holdout === undefined && check.baseline !== false;

export function checkActivities(deps: ActivityDeps) {
  return {
    /**
     * Run every check, in order, in a fresh sandbox on a checkout of the checkpoint (judge/checkRun.ts); all
     * run, so the agent gets every failure at once. Then each is held against the base: the base's tests must all
     * have run, a passing check must report a canary failing, and pass with the base's versions of the test files.
     */
    async runChecks(input: ChecksInput): Promise<CheckResult[]> {
      return withHeartbeat(async () => {
        const secrets = deps.secrets.resolve(input.secrets, deps.self.worker);
        const site: CheckSite = { deps, input, secrets };
        const ran = new Map<string, { result: CheckResult; outcome?: TestOutcome }>();
        await freshCheckSandbox(site, 'checks', async (sandbox, _repo, laid) => {
          if (laid.length)
            await deps.runLog.append(
              input.runId,
              new Redactor(secrets).redact(
                `\n[nightshift: the checks run the base's test harness, not the agent's: ${laid.join('; ')}]\n`,
              ),
            );
          for (const check of input.checks)
            if (check.holdout === undefined) ran.set(check.name, await runCheck(deps, sandbox, check, input, secrets));
        });
        for (const check of input.checks)
          if (check.holdout !== undefined)
            ran.set(check.name, { result: await runHoldoutCheck(deps, input, { ...check, holdout: check.holdout }) });
        const results = input.checks.map((c) => ran.get(c.name)!.result);

        const held = input.checks.filter(holdsBaseline);
        if (!input.baseCommit || !held.length) return results;
        const base = await baselines(deps, { ...input, baseCommit: input.baseCommit }, held, secrets);
        // The run's git directory holds the checkpoint: which test files it changes is read there, as git objects.
        const repo = runRepo(deps, await openSandbox(deps, input.runId, input.sandbox));
        for (const check of held) {
          const { result, outcome } = ran.get(check.name)!;
          const baseline = base.get(check.name);
          if (!baseline) continue;
          result.integrity = await heldAgainstBase(site, check, result, baseline, outcome!);
          const unverified = unverifiedReason(baseline.tally, outcome?.tally);
          if (unverified && !result.integrity.findings.length) {
            result.unverified = unverified;
            await deps.runLog.append(input.runId, `[nightshift: check ${check.name} is UNVERIFIED: ${unverified}]\n`);
          }
          const changes = await testChanges(repo, input.baseCommit, input.checkpoint.commit, check.allowTestChanges);
          if (result.passed) await judgeByBaseTests(site, check, input.baseCommit, changes, result.integrity);
          if (result.integrity.findings.length) result.passed = false;
        }
        return results;
      });
    },
  };
}

/** One check's command, logged: whether it passed, its test counts and JUnit report. */
async function runCheck(
  deps: ActivityDeps,
  sandbox: Sandbox,
  check: Check,
  input: ChecksInput,
  secrets: Record<string, string>,
): Promise<{ result: CheckResult; outcome: TestOutcome }> {
  const log = new CommandLog(
    deps.runLog,
    input.runId,
    `check ${check.name}, iteration ${input.iteration}: ${headerCommand(check.run)}`,
    secrets,
  );
  const exec = await execCheck(sandbox, check, input, secrets, (t, stream) => log.write(t, stream));
  const passed = commandPassed(exec);
  const { tally, xml, problem } = await checkTally(sandbox.workspace, check.junit, log.text());
  const junit = xml ? junitCounts(xml) : undefined;
  if (problem) log.write(`[nightshift: ${problem}]\n`);
  const notFound = notFoundInSandbox(exec.exitCode, log.text(), Object.keys(deps.toolchains));
  if (notFound) log.write(`[nightshift: ${notFound}]\n`);
  if (junit)
    log.write(
      `[nightshift: JUnit ${check.junit}: ${junit.tests} tests, ${junit.failures} failures, ${junit.errors} errors, ${junit.skipped} skipped]\n`,
    );
  log.write(
    `[nightshift: check ${check.name} ${passed ? 'passed' : 'failed'}${exec.exitCode !== null ? ` (exit ${exec.exitCode})` : ''}]\n`,
  );
  const closed = await log.close(deps.store);
  const result: CheckResult = {
    ...commandResult(check.run, exec, closed),
    ...(notFound ? { notFound } : {}),
    name: check.name,
    passed,
    ...(junit && xml ? { junit: { ...junit, reportId: await deps.store.put(xml) } } : {}),
  };
  return { result, outcome: outcomeOf(exec.exitCode, tally, log.text()) };
}

/** Where a check runs at the base, for its baseline. */
interface BaseSite extends CheckSite {
  sandbox: Sandbox;
  repo: RunRepo;
}

/**
 * A check's result held against its baseline: the base's tests must all have run (`plain` is the check's normal run),
 * and a passing check must report its canaries (mutants of the base's tests) failing and every other test as before,
 * run again in a sandbox of its own.
 */
async function heldAgainstBase(
  site: CheckSite,
  check: Check,
  result: CheckResult,
  baseline: Baseline,
  plain: TestOutcome,
): Promise<CheckIntegrity> {
  const now = plain.tally;
  const integrity: CheckIntegrity = { findings: baselineFindings(result.name, baseline.tally, now) };
  if (baseline.tally && now)
    integrity.tests = {
      base: { ran: ran(baseline.tally), skipped: baseline.tally.skipped },
      now: { ran: ran(now), skipped: now.skipped },
      source:
        baseline.tally.cases && now.cases ? (now.format === 'junit' || !now.format ? 'junit' : 'names') : 'summary',
      ...(now.format && now.format !== 'junit' ? { format: now.format } : {}),
    };
  if ('off' in baseline.canary) integrity.canary = baseline.canary;
  else if (result.passed) {
    const { deps, input } = site;
    const files = baseline.canary.files;
    // A sandbox of its own, like every run of a check: nothing the normal run left tells this one it is the canary's.
    const { planted, run } = await rerunFresh(
      site,
      check,
      'canary',
      async () => undefined,
      async (sandbox, repo) => {
        const planted = await plantCanaries(repo, input.baseCommit!, input.checkpoint.commit, files);
        return {
          planted,
          run: planted.files.length ? await canaryRun({ ...site, sandbox, repo }, check, planted, plain) : undefined,
        };
      },
    );
    for (const u of planted.unplanted)
      await deps.runLog.append(
        input.runId,
        `[nightshift: no canary of check ${check.name} could be planted in ${u.file}: ${u.why}]\n`,
      );
    if (run) {
      const { verdict, logId } = run;
      integrity.canary = {
        result: !verdict.reported ? 'passed' : verdict.changed ? 'changed' : 'reported',
        files: planted.files.length,
        logId,
      };
      integrity.findings.push(...canaryFindings(result.name, planted, verdict));
    } else {
      integrity.canary = {
        off: `no canary could be planted: ${planted.unplanted.map((u) => `${u.file}: ${u.why}`).join('; ')}`,
      };
      integrity.findings.push(...canaryFindings(result.name, planted, undefined));
    }
  }
  return integrity;
}

/**
 * The check run once more with `planted` canaries: each must be reported failing, and every other test as in `plain`.
 */
async function canaryRun(
  site: BaseSite,
  check: Check,
  planted: CanaryRun,
  plain: TestOutcome,
): Promise<{ verdict: CanaryVerdict; logId: string }> {
  const { deps, sandbox, input, secrets } = site;
  const log = new CommandLog(
    deps.runLog,
    input.runId,
    `canary run of check ${check.name}, iteration ${input.iteration}: ${headerCommand(check.run)}, with a copy of one of the base's tests, its expected value changed, in each of ${planted.files.length} test files`,
    secrets,
  );
  const exec = await execCheck(sandbox, check, input, secrets, (t, stream) => log.write(t, stream));
  const verdict = canaryVerdict(
    planted.files.length,
    plain,
    await testOutcome(sandbox.workspace, check.junit, exec.exitCode, log.text()),
  );
  log.write(`[nightshift: ${describeVerdict(verdict)}]\n`);
  return { verdict, logId: (await log.close(deps.store)).logId };
}

/**
 * The checks' tests at the base commit, and whether their harness reports a canary failing there: from the
 * worker's cache, or run once in a sandbox of their own on a checkout of the base (the spec's network and secrets,
 * as the checks have them). Each line of the run's log says which.
 */
async function baselines(
  deps: ActivityDeps,
  input: ChecksInput & { baseCommit: string },
  checks: Check[],
  secrets: Record<string, string>,
): Promise<Map<string, Baseline>> {
  const found = new Map<string, Baseline>();
  const missing: Check[] = [];
  const note = (text: string) =>
    deps.runLog.append(input.runId, new Redactor(secrets).redact(`[nightshift: ${text}]\n`));
  for (const check of checks) {
    const cached = await readBaseline(baselineFile(deps.home, input.baseCommit, check, input.sandbox));
    if (cached) {
      found.set(check.name, cached);
      await note(
        `baseline of check ${check.name} at the base ${input.baseCommit.slice(0, 12)} (cached on ${deps.self.worker}): ${describeTally(cached.tally)}; canary ${'off' in cached.canary ? `off: ${cached.canary.off}` : `in ${cached.canary.files.length} test files`}`,
      );
    } else missing.push(check);
  }
  if (!missing.length) return found;
  const started = Date.now();
  await inCheckoutSandbox(
    deps,
    input.runId,
    'baseline',
    input.sandbox,
    input.baseCommit,
    async (sandbox, repo) => {
      const testFiles = await testFilesAt(repo.git, input.baseCommit);
      for (const check of missing) {
        const baseline = await measureBaseline(
          { deps, sandbox, repo, input, secrets },
          check,
          input.baseCommit,
          testFiles,
        );
        await writeBaseline(baselineFile(deps.home, input.baseCommit, check, input.sandbox), baseline);
        found.set(check.name, baseline);
        await note(
          `baseline of check ${check.name} at the base ${input.baseCommit.slice(0, 12)}: ${describeTally(baseline.tally)}; canary ${'off' in baseline.canary ? `off: ${baseline.canary.off}` : `reported failing in ${baseline.canary.files.length} test files`}`,
        );
      }
    },
    { environment: input.environment, over: input.baseCommit },
  );
  await note(`baselines measured in ${((Date.now() - started) / 1000).toFixed(1)} s, once for this base`);
  return found;
}

/**
 * A check run at the base (checked out in `site`): its tests, then whether canaries in `testFiles` are reported
 * failing, and the rest as before.
 */
async function measureBaseline(
  site: BaseSite,
  check: Check,
  baseCommit: string,
  testFiles: string[],
): Promise<Baseline> {
  const { sandbox, repo, input, secrets } = site;
  const run = async () => {
    let output = '';
    const exec = await execCheck(sandbox, check, input, secrets, (t) => (output += t));
    return testOutcome(sandbox.workspace, check.junit, exec.exitCode, output);
  };
  const plain = await run();
  const { tally } = plain;
  let canary: Baseline['canary'] = { off: 'the check printed no test counts at the base' };
  if (tally && !testFiles.length) canary = { off: 'the base has no test files a canary can be added to' };
  if (tally && testFiles.length) {
    // At the base some tests fail (the task's bug): a mutant of one of those could pass, and prove nothing.
    const failing = (plain.cases ?? []).filter((c) => c.status === 'failed').map((c) => c.name);
    const planted = await plantCanaries(repo, baseCommit, baseCommit, testFiles, failing);
    const verdict = planted.files.length ? canaryVerdict(planted.files.length, plain, await run()) : undefined;
    await removeCanaries(repo, baseCommit, planted);
    canary = !verdict
      ? { off: "the base's test files have no test that compares with an expected value (a canary is a copy of one)" }
      : verdict.reported && !verdict.changed
        ? { files: planted.files }
        : {
            off: `the base's own harness did not report the canaries failing and its other tests as before (${verdict.changed ?? 'its runner does not pick up tests added to its test files'})`,
          };
  }
  return { ...(tally ? { tally } : {}), canary };
}
