import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { HoldoutRefusedError, resolveHoldoutSet } from '../config/holdout';
import type { Check } from '../spec/schema';
import type { ExecResult, Sandbox } from '../sandbox/sandbox';
import type { CheckIntegrity, CheckResult, HoldoutResult } from '../contracts/run';
import { baselineFile, readBaseline, writeBaseline } from './baseline';
import { canaryVerdict, outcomeOf, withMutant, type TestOutcome } from './canary';
import type { ChecksInput } from '../contracts/checks';
import type { ActivityDeps } from '../runtime/deps';
import { paths, type RunRepo } from '../git/git';
import { layBaseHarness } from './harness';
import { throwIfCancelled } from '../runtime/heartbeat';
import { removeStaleJunit } from './junit';
import { clearFolders, foldersOf, layOver, type LaidFile } from './layFiles';
import { checkTally, ran } from './tally';
import { CommandLog, commandPassed, commandResult, headerCommand } from '../workspaces/commandLog';
import { inCheckoutSandbox } from '../workspaces/environments';

// Hold-out checks (docs/holdout.md): tests the agent never sees, laid over a fresh checkout of the checkpoint in a
// sandbox of their own, whose output is never kept: only how the check ended and how many of its tests failed. They
// get the visible checks' defences: the base's run of the set says how many tests must run, and a canary planted
// among the hidden tests must be reported failing.

const MAX_FILES = 10_000;
const MAX_BYTES = 64 * 1024 ** 2;
/** The end of the check's output, kept in memory only, to find a test runner's summary line in. */
const OUTPUT_TAIL = 64 * 1024;

/** A file of a set: `rel` is relative to the set, and to the workspace it is laid over. */
type HoldoutFile = LaidFile;

/** A hold-out set's regular files (links and other kinds are skipped, never followed) and their digest. */
export async function readHoldoutSet(
  name: string,
  holdoutDir: string,
): Promise<{ files: HoldoutFile[]; digest: string }> {
  const dir = resolveHoldoutSet(name, holdoutDir);
  const files: HoldoutFile[] = [];
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(child);
      if (!entry.isFile()) continue;
      if (files.length >= MAX_FILES)
        throw new HoldoutRefusedError(`the hold-out set "${name}" holds more than ${MAX_FILES} files`);
      // O_NOFOLLOW: a file swapped for a link since the listing is not read through.
      const handle = await fs.open(path.join(dir, child), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
      try {
        const content = await handle.readFile();
        bytes += content.length;
        if (bytes > MAX_BYTES)
          throw new HoldoutRefusedError(`the hold-out set "${name}" is larger than ${MAX_BYTES / 1024 ** 2} MiB`);
        files.push({ rel: child, content, mode: (await handle.stat()).mode & 0o755 });
      } finally {
        await handle.close();
      }
    }
  };
  await walk('');
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const digest = createHash('sha256');
  for (const f of files) digest.update(`${f.rel}\0${createHash('sha256').update(f.content).digest('hex')}\n`);
  return { files, digest: `sha256:${digest.digest('hex')}` };
}

/**
 * How the base's code did on a hold-out set: how many of its tests ran, and the set's files a canary is reported
 * failing in.
 */
export interface HoldoutBaseline {
  tests?: { passed: number; failed: number; skipped: number };
  canary: { files: string[] } | { off: string };
}

/** Where one check's run happens: the sandbox with the checkout, its set, and what the check's log gets. */
interface HoldoutSite {
  sandbox: Sandbox;
  repo: RunRepo;
  check: Check & { holdout: string };
  timeoutMs: number;
  baseCommit?: string;
  log: (text: string) => void;
}

/**
 * One run of the hidden tests: the set's folders laid in whole (whatever the checkout has there removed, the base's
 * files put back, then `files`), the check's command; its outcome from the tail of its output, kept in memory only.
 */
async function runHidden(site: HoldoutSite, files: HoldoutFile[]): Promise<TestOutcome & { exec: ExecResult }> {
  const { sandbox, repo, check } = site;
  const folders = foldersOf(files);
  await clearFolders(sandbox.workspace, folders);
  if (site.baseCommit) {
    // The base's own files in those folders are not the agent's: they stay.
    const held = [];
    for (const f of folders)
      if ((await repo.git(['--literal-pathspecs', 'ls-tree', '--full-tree', site.baseCommit, '--', f])).trim())
        held.push(f);
    if (held.length)
      await repo.git(['--literal-pathspecs', 'restore', `--source=${site.baseCommit}`, '--worktree', '--', ...held]);
  }
  await layOver(sandbox.workspace, files);
  if (check.junit) await removeStaleJunit(sandbox.workspace, check.junit);
  let output = '';
  const exec = await sandbox.exec({
    cmd: ['sh', '-c', check.run],
    timeoutMs: site.timeoutMs,
    signal: Context.current().cancellationSignal,
    onOutput: (chunk) => {
      output = (output + chunk).slice(-OUTPUT_TAIL);
    },
  });
  throwIfCancelled();
  const { tally, problem } = await checkTally(sandbox.workspace, check.junit, output);
  if (problem) site.log(`[nightshift: ${problem}]\n`);
  return { ...outcomeOf(exec.exitCode, tally, output), exec };
}

/**
 * Files the change has in `folders` that the base has not, or has otherwise: the agent's, which the set's folders never
 * hold.
 */
async function changedIn(
  repo: RunRepo,
  folders: string[],
  baseCommit: string | undefined,
  commit: string,
): Promise<string[]> {
  if (!folders.length) return [];
  const list = async (c: string) =>
    paths(await repo.git(['--literal-pathspecs', 'ls-tree', '-r', '-z', '--full-tree', c, '--', ...folders]));
  const atBase = new Set(baseCommit ? await list(baseCommit) : []);
  return (await list(commit)).filter((e) => !atBase.has(e)).map((e) => e.slice(e.indexOf('\t') + 1));
}

/**
 * The set's files with a mutant of one of its own tests in each of `files` (all that can carry one, when not given).
 */
function withMutants(set: HoldoutFile[], files?: string[]): { files: HoldoutFile[]; planted: string[] } {
  const planted: string[] = [];
  const laid = set.map((f) => {
    if (files && !files.includes(f.rel)) return f;
    const text = f.content.toString('utf8');
    const mutant = withMutant(f.rel, text, text);
    if ('why' in mutant) return f;
    planted.push(f.rel);
    return { ...f, content: Buffer.from(mutant.content) };
  });
  return { files: laid, planted };
}

/**
 * The base's run of the hidden tests, once per base and set (cached on the worker, counts only): how many of them
 * exist, and whether the runner reports a canary planted in the set failing and the rest as before.
 */
async function holdoutBaseline(
  deps: ActivityDeps,
  input: ChecksInput & { baseCommit: string },
  check: Check & { holdout: string },
  set: { files: HoldoutFile[]; digest: string },
  log: (text: string) => void,
): Promise<HoldoutBaseline> {
  const file = baselineFile(
    deps.home,
    input.baseCommit,
    { ...check, run: `${check.run}\0holdout ${set.digest}` },
    { ...input.sandbox, network: [] },
  );
  const cached = await readBaseline<HoldoutBaseline>(file);
  if (cached) return cached;
  const baseline = await inCheckoutSandbox(
    deps,
    input.runId,
    `holdout-base-${check.name}`,
    { ...input.sandbox, network: [] },
    input.baseCommit,
    async (sandbox, repo) => {
      const site: HoldoutSite = { sandbox, repo, check, timeoutMs: check.timeout ?? input.timeoutMs, log };
      const plain = await runHidden(site, set.files);
      const tests = plain.tally && {
        passed: plain.tally.passed,
        failed: plain.tally.failed,
        skipped: plain.tally.skipped,
      };
      const mutated = withMutants(set.files);
      if (!tests) return { canary: { off: 'its runner printed no test counts at the base' } };
      if (!mutated.planted.length)
        return {
          tests,
          canary: { off: 'the set holds no test a canary can be made of (a test comparing with an expected value)' },
        };
      const verdict = canaryVerdict(mutated.planted.length, plain, await runHidden(site, mutated.files));
      return {
        tests,
        canary:
          verdict.reported && !verdict.changed
            ? { files: mutated.planted }
            : {
                off: "the base's run did not report a canary planted in the set failing and the rest as before (its runner does not pick up tests added to its files)",
              },
      };
    },
    { environment: input.environment, over: input.baseCommit },
  );
  await writeBaseline(file, baseline);
  return baseline;
}
/**
 * One hold-out check: a sandbox of its own (`<run root>-holdout-<check>`, offline and without the run's secrets, so
 * the tests cannot leave it), a fresh checkout of the checkpoint, the set's folders laid over it in whole, the
 * check's command; then the sandbox is removed, whatever happened. Held against the base's run of the same set: as
 * many tests must run, and a passing check must report a canary planted among the hidden tests failing. The stored
 * log says how it ended, never what it printed.
 */
export async function runHoldoutCheck(
  deps: ActivityDeps,
  input: ChecksInput,
  check: Check & { holdout: string },
): Promise<CheckResult> {
  const timeoutMs = check.timeout ?? input.timeoutMs;
  const log = new CommandLog(
    deps.runLog,
    input.runId,
    `hold-out check ${check.name}, iteration ${input.iteration}: ${headerCommand(check.run)} (set "${check.holdout}"; its output is not kept)`,
  );
  let set: Awaited<ReturnType<typeof readHoldoutSet>>;
  try {
    set = await readHoldoutSet(check.holdout, deps.holdoutDir);
  } catch (err) {
    if (!(err instanceof HoldoutRefusedError)) throw err;
    const problem = `${err.message} (on worker ${deps.self.worker})`;
    log.write(`[nightshift: hold-out check ${check.name} could not run: ${problem}]\n`);
    const exec = { exitCode: null, timedOut: false, cancelled: false, durationMs: 0 };
    return {
      ...commandResult(check.run, exec, await log.close(deps.store)),
      name: check.name,
      passed: false,
      holdout: { set: check.holdout, problem },
    };
  }
  const holdout: HoldoutResult = { set: check.holdout, digest: set.digest, files: set.files.length };
  log.write(`[nightshift: hold-out set "${check.holdout}": ${set.files.length} files, ${set.digest}]\n`);
  const write = (text: string) => log.write(text);
  const base = input.baseCommit
    ? await holdoutBaseline(deps, { ...input, baseCommit: input.baseCommit }, check, set, write)
    : undefined;
  if (base)
    log.write(
      `[nightshift: at the base: ${base.tests ? `${base.tests.passed + base.tests.failed} tests ran` : 'no test counts'}; canary ${'off' in base.canary ? `off: ${base.canary.off}` : `reported failing in ${base.canary.files.length} of the set's files`}]\n`,
    );

  // Offline and without the run's secrets, so the tests cannot leave it.
  return inCheckoutSandbox(
    deps,
    input.runId,
    `holdout-${check.name}`,
    { ...input.sandbox, network: [] },
    input.checkpoint.commit,
    async (sandbox, repo) => {
      // The base's harness here too: a hold-out check run through the agent's package.json scripts would be its to
      // fake.
      if (input.baseCommit) await layBaseHarness(repo, input.baseCommit, input.checkpoint.commit, input.harness);
      const site: HoldoutSite = { sandbox, repo, check, timeoutMs, baseCommit: input.baseCommit, log: write };
      const theirs = await changedIn(repo, foldersOf(set.files), input.baseCommit, input.checkpoint.commit);
      if (theirs.length)
        log.write(
          `[nightshift: the set's folders are laid in whole: removed what the change had in them: ${theirs.slice(0, 10).join(', ')}${theirs.length > 10 ? ', …' : ''}]\n`,
        );
      const plain = await runHidden(site, set.files);
      const { exec } = plain;
      let passed = commandPassed(exec);
      // The report names the hidden tests: only its totals leave the sandbox.
      if (plain.tally) holdout.tests = { passed: plain.tally.passed, failed: plain.tally.failed };
      if (exec.timedOut) log.write(`[nightshift: check killed after ${Math.round(timeoutMs / 1000)}s]\n`);
      if (exec.limitHit) log.write(`[nightshift: the check ran into a sandbox limit: ${exec.limitHit}]\n`);
      const integrity = base && (await holdoutIntegrity(site, set.files, base, plain, passed));
      if (integrity?.findings.length) passed = false;
      const tests = holdout.tests
        ? `: ${holdout.tests.failed} of ${holdout.tests.passed + holdout.tests.failed} tests failed`
        : '';
      log.write(
        `[nightshift: hold-out check ${check.name} ${passed ? 'passed' : 'failed'}${exec.exitCode !== null ? ` (exit ${exec.exitCode})` : ''}${tests}${integrity?.findings.length ? `; ${integrity.findings.map((f) => f.rule).join(', ')}` : ''}]\n`,
      );
      // The canary run's account is a line of this log (no log of its own: its output is not kept either).
      return {
        ...commandResult(check.run, exec, await log.close(deps.store)),
        name: check.name,
        passed,
        holdout,
        ...(integrity ? { integrity } : {}),
      };
    },
    { environment: input.environment, over: input.baseCommit },
  );
}

/**
 * A hold-out check held against the base's run of its set: fewer tests than the base ran is a finding; a passing
 * check is run again with a mutant of one of the hidden tests in each file that carried one at the base, which must
 * be reported failing and the rest as before. A set no canary can be planted in is unverifiable, and says so.
 * The findings never name a hidden test or file: the agent reads them.
 */
async function holdoutIntegrity(
  site: HoldoutSite,
  set: HoldoutFile[],
  base: HoldoutBaseline,
  plain: TestOutcome,
  passed: boolean,
): Promise<CheckIntegrity> {
  const name = site.check.name;
  const integrity: CheckIntegrity = { findings: [] };
  const [atBase, now] = [base.tests ? base.tests.passed + base.tests.failed : 0, plain.tally ? ran(plain.tally) : 0];
  if (base.tests)
    integrity.tests = {
      base: { ran: atBase, skipped: base.tests.skipped },
      now: { ran: now, skipped: plain.tally?.skipped ?? 0 },
      source: 'summary',
    };
  if (now < atBase)
    integrity.findings.push({
      rule: 'tests-missing',
      message: `Hold-out check "${name}": ${atBase} of its hidden tests ran on the base's code and ${now} ran on the change${plain.tally ? '' : ' (it printed no test counts)'}: the run was cut short or the tests were never reached (an early exit?); the hidden tests must all run`,
    });
  if ('off' in base.canary) {
    integrity.canary = { off: `unverifiable: ${base.canary.off}` };
    site.log(
      `[nightshift: hold-out check ${name} is unverifiable: ${base.canary.off}; its result is only its exit code]\n`,
    );
  } else if (passed) {
    const mutated = withMutants(set, base.canary.files);
    const verdict = canaryVerdict(mutated.planted.length, plain, await runHidden(site, mutated.files));
    site.log(
      `[nightshift: canary run: ${verdict.reported ? (verdict.changed ? "the canary was reported failing, but the other hidden tests CHANGED from the check's own run" : "the canary was reported failing, as it must, and the other hidden tests as in the check's own run") : 'the canary PASSED: the harness reports success whatever the tests say'}]\n`,
    );
    integrity.canary = {
      result: !verdict.reported ? 'passed' : verdict.changed ? 'changed' : 'reported',
      files: mutated.planted.length,
    };
    if (!verdict.reported)
      integrity.findings.push({
        rule: 'harness-lying',
        message: `Hold-out check "${name}" passed even with a test that must fail planted among its hidden tests: something in the change makes the tests report success whatever they find (an early exit, a patched assertion library or test runner, a summary printed by the code under test). Remove it; make the change right by fixing the code`,
      });
    if (verdict.changed)
      integrity.findings.push({
        rule: 'harness-lying',
        message: `Hold-out check "${name}": with a test that must fail planted among its hidden tests, the other hidden tests did not report what they reported in the check's own run: the change behaves differently when the tests differ. Remove that; make the change right by fixing the code`,
      });
  }
  return integrity;
}
