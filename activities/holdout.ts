import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { HoldoutRefusedError, resolveHoldoutSet } from '../config/holdout';
import type { Check } from '../spec/schema';
import type { CheckResult, HoldoutResult } from '../workflows/types';
import type { ChecksInput } from './checks';
import type { ActivityDeps } from './deps';
import { layBaseHarness } from './harness';
import { throwIfCancelled } from './heartbeat';
import { removeStaleJunit } from './junit';
import { checkTally } from './tally';
import { CommandLog, commandResult, headerCommand } from './logs';
import { inCheckoutSandbox } from './workspace';

// Hold-out checks (docs/holdout.md): tests the agent never sees, laid over a fresh checkout of the checkpoint in a
// sandbox of their own, whose output is never kept: only how the check ended and how many of its tests failed.

const MAX_FILES = 10_000;
const MAX_BYTES = 64 * 1024 ** 2;
/** The end of the check's output, kept in memory only, to find a test runner's summary line in. */
const OUTPUT_TAIL = 64 * 1024;

interface HoldoutFile {
  /** `/`-separated, relative to the set (and to the workspace it is laid over). */
  rel: string;
  content: Buffer;
  mode: number;
}

/** A hold-out set's regular files (links and other kinds are skipped, never followed) and their digest. */
export async function readHoldoutSet(name: string, holdoutDir: string): Promise<{ files: HoldoutFile[]; digest: string }> {
  const dir = resolveHoldoutSet(name, holdoutDir);
  const files: HoldoutFile[] = [];
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(child);
      if (!entry.isFile()) continue;
      if (files.length >= MAX_FILES) throw new HoldoutRefusedError(`the hold-out set "${name}" holds more than ${MAX_FILES} files`);
      // O_NOFOLLOW: a file swapped for a link since the listing is not read through.
      const handle = await fs.open(path.join(dir, child), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
      try {
        const content = await handle.readFile();
        bytes += content.length;
        if (bytes > MAX_BYTES) throw new HoldoutRefusedError(`the hold-out set "${name}" is larger than ${MAX_BYTES / 1024 ** 2} MiB`);
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
 * Write the set's files into `workspace` at their relative paths. The workspace is the agent's commit: whatever
 * stands at a path the set needs (a link, a file where a directory goes) is removed first, never written through.
 */
export async function layOver(workspace: string, files: HoldoutFile[]): Promise<void> {
  for (const file of files) {
    const parts = file.rel.split('/');
    let dir = workspace;
    for (const part of parts.slice(0, -1)) {
      dir = path.join(dir, part);
      const stat = await fs.lstat(dir).catch(() => undefined);
      if (stat?.isDirectory()) continue;
      if (stat) await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir);
    }
    const target = path.join(dir, parts[parts.length - 1]);
    await fs.rm(target, { recursive: true, force: true });
    // `wx`: O_CREAT|O_EXCL, which fails rather than follow a link that appeared at the path.
    await fs.writeFile(target, file.content, { flag: 'wx', mode: file.mode });
  }
}

/**
 * One hold-out check: a sandbox of its own (`<run root>-holdout-<check>`, offline and without the run's secrets, so
 * the tests cannot leave it), a fresh checkout of the checkpoint, the set laid over it, the check's command; then
 * the sandbox is removed, whatever happened. The stored log says how it ended, never what it printed.
 */
export async function runHoldoutCheck(deps: ActivityDeps, input: ChecksInput, check: Check & { holdout: string }): Promise<CheckResult> {
  const timeoutMs = check.timeout ?? input.timeoutMs;
  const log = new CommandLog(deps.runLog, input.runId, `hold-out check ${check.name}, iteration ${input.iteration}: ${headerCommand(check.run)} (set "${check.holdout}"; its output is not kept)`);
  let set: Awaited<ReturnType<typeof readHoldoutSet>>;
  try {
    set = await readHoldoutSet(check.holdout, deps.holdoutDir);
  } catch (err) {
    if (!(err instanceof HoldoutRefusedError)) throw err;
    const problem = `${err.message} (on worker ${deps.self.worker})`;
    log.write(`[nightshift: hold-out check ${check.name} could not run: ${problem}]\n`);
    const exec = { exitCode: null, timedOut: false, cancelled: false, durationMs: 0 };
    return { ...commandResult(check.run, exec, await log.close(deps.store)), name: check.name, passed: false, holdout: { set: check.holdout, problem } };
  }
  const holdout: HoldoutResult = { set: check.holdout, digest: set.digest, files: set.files.length };
  log.write(`[nightshift: hold-out set "${check.holdout}": ${set.files.length} files, ${set.digest}]\n`);

  // Offline and without the run's secrets, so the tests cannot leave it.
  return inCheckoutSandbox(deps, input.runId, `holdout-${check.name}`, { ...input.sandbox, network: [] }, input.checkpoint.commit, async (sandbox, repo) => {
    // The base's harness here too: a hold-out check run through the agent's package.json scripts would be its to fake.
    if (input.baseCommit) await layBaseHarness(repo, input.baseCommit, input.checkpoint.commit, input.harness);
    await layOver(sandbox.workspace, set.files);
    if (check.junit) await removeStaleJunit(sandbox.workspace, check.junit);

    let output = '';
    const exec = await sandbox.exec({
      cmd: ['sh', '-c', check.run],
      timeoutMs,
      signal: Context.current().cancellationSignal,
      onOutput: (chunk) => {
        output = (output + chunk).slice(-OUTPUT_TAIL);
      },
    });
    throwIfCancelled();
    const passed = exec.exitCode === 0 && !exec.timedOut && !exec.limitHit;
    // The report names the hidden tests: only its totals leave the sandbox.
    const { tally, problem } = await checkTally(sandbox.workspace, check.junit, output);
    if (problem) log.write(`[nightshift: ${problem}]\n`);
    if (tally) holdout.tests = { passed: tally.passed, failed: tally.failed };
    if (exec.timedOut) log.write(`[nightshift: check killed after ${Math.round(timeoutMs / 1000)}s]\n`);
    if (exec.limitHit) log.write(`[nightshift: the check ran into a sandbox limit: ${exec.limitHit}]\n`);
    const tests = holdout.tests ? `: ${holdout.tests.failed} of ${holdout.tests.passed + holdout.tests.failed} tests failed` : '';
    log.write(`[nightshift: hold-out check ${check.name} ${passed ? 'passed' : 'failed'}${exec.exitCode !== null ? ` (exit ${exec.exitCode})` : ''}${tests}]\n`);
    return { ...commandResult(check.run, exec, await log.close(deps.store)), name: check.name, passed, holdout };
  }, { environment: input.environment, over: input.baseCommit });
}
