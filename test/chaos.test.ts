// Chaos on a small fleet, with real processes and real signals: three `nightshift worker` processes, the API in this
// process, twenty runs in flight; then a worker SIGKILLed mid-agent, the Temporal server SIGKILLed and restarted, the
// API restarted under a following client, a worker drained by SIGTERM. Nothing may be lost, doubled or left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { RunLog } from '../store/runLog';
import type { RunState } from '../contracts/run';
import { gitIn, makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';
import { startKillableTemporal, suiteTemporalKind } from './helpers/temporalServer';
import { exited, leftoversOf, outputTail, pgrep, startWorkerProcess, workerNamePrefix } from './helpers/workerProcess';

const RUNS = 20;
const CLI = path.resolve(__dirname, '..', 'cli', 'main.js');
// The agent edits first, then works: a second application of its work (a run resumed without a clean workspace)
// would show as a second line. It outlives the drained worker's grace time, so the drain must hand it back.
const AGENT =
  'echo "applied by the agent" >> src/log.txt; echo 2 > src/value.txt; echo agent-started; sleep 8; echo agent-done';

const t0 = Date.now();
const progress = (line: string) => process.stderr.write(`[chaos +${((Date.now() - t0) / 1000).toFixed(0)}s] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The exit code of a child process (null when a signal ended it). */
function exitCode(child: ChildProcess): Promise<number | null> {
  return exited(child).then(() => child.exitCode);
}

/**
 * A run in flight whose agent has started on one of `candidates` (and is still sleeping): the moment to hit that
 * worker. Read from the run logs the workers write (one file read a run, no workflow query), so that a sweep over
 * every run stays well inside one agent's sleep however loaded the machine is.
 */
async function runMidAgentOn(
  stack: TestStack,
  ids: string[],
  candidates: ChildProcess[],
  timeoutMs = 120_000,
): Promise<{ id: string; worker: ChildProcess }> {
  const logs = new RunLog(stack.config.home);
  const deadline = Date.now() + timeoutMs;
  let seen: string[] = [];
  while (Date.now() < deadline) {
    seen = [];
    for (const id of ids) {
      const { text } = await logs.read(id, 0);
      const provision = text.lastIndexOf('=== provision on ');
      const sinceProvision = text.slice(provision);
      const worker = candidates.find((w) => sinceProvision.startsWith(`=== provision on ${workerNamePrefix(w)}`));
      // Whole lines: the log's header line quotes the agent's command, markers and all.
      const started = /^agent-started$/m.test(sinceProvision);
      const done = /^agent-done$/m.test(sinceProvision);
      seen.push(
        `${id}: ${provision < 0 ? 'not provisioned' : sinceProvision.slice(17, sinceProvision.indexOf(' ===', 17))}${started ? (done ? ', agent done' : ', agent started') : ''}`,
      );
      if (worker && started && !done) return { id, worker };
    }
    await sleep(200);
  }
  throw new Error(
    `no run was mid-agent on worker ${candidates.map(workerNamePrefix).join(' or ')} within ${timeoutMs} ms; runs: ${seen.join(', ')}`,
  );
}

// On a server of the suite's kind (PostgreSQL under `npm run test:cluster`), a fresh one of its own to kill.
test(
  `a fleet under chaos loses nothing: worker SIGKILL, Temporal (${suiteTemporalKind()}) SIGKILL + restart, API restart, worker drain`,
  async () => {
    const server = await startKillableTemporal();
    // The drained worker gets 2 s of grace, less than an agent's sleep: its stage must be handed back, not lost.
    const stack = await startTestStack({
      worker: false,
      temporalAddress: server.address,
      env: { NIGHTSHIFT_MAX_SANDBOXES: '4', NIGHTSHIFT_SHUTDOWN_GRACE: '2s' },
    });
    const workers = [1, 2, 3].map(() => startWorkerProcess(stack.env));
    const home = stack.config.home;
    let follower: ChildProcess | undefined;
    try {
      const repo = makeRepo(VALUE_REPO);
      const ids: string[] = [];
      for (let i = 0; i < RUNS; i++)
        ids.push(await stack.submit(spec(repo, AGENT, { title: `chaos ${i}`, approval: { required: false } })));
      progress(`${RUNS} runs submitted to 3 workers of capacity 4`);

      // 1. A worker dies mid-agent; a supervisor starts a replacement, which sweeps the dead one's sandboxes.
      const killed = workers[0];
      const { id: killedRun } = await runMidAgentOn(stack, ids, [killed]);
      killed.kill('SIGKILL');
      await exited(killed);
      workers.push(startWorkerProcess(stack.env));
      progress(`SIGKILLed worker ${killed.pid} while ${killedRun} was mid-agent; started a replacement`);

      // 2. The Temporal server dies and comes back on the same database and address; workers and the API reconnect.
      expect(await server.kill()).toBe('SIGKILL');
      const down = Date.now();
      // Every run lives in the server's own database, the one it comes back on: PostgreSQL's, or the dev server's
      // SQLite file.
      const stored = server.sql(
        'temporal',
        `SELECT count(DISTINCT workflow_id) FROM executions WHERE workflow_id IN (${ids.map((id) => `'${id}'`).join(', ')})`,
      );
      expect(stored.trim()).toBe(String(RUNS));
      await server.restart();
      progress(
        `SIGKILLed the Temporal server (${server.kind}); back on ${server.address} after ${Date.now() - down} ms`,
      );

      // 3. The API restarts while `nightshift logs -f` follows a run that is still going.
      const followed = killedRun;
      let followedOut = '';
      follower = spawn(process.execPath, [CLI, 'logs', followed, '-f'], {
        env: { ...stack.env, NIGHTSHIFT_URL: stack.apiUrl, NIGHTSHIFT_TOKEN: stack.token },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      follower.stdout!.on('data', (c: Buffer) => (followedOut += c.toString()));
      follower.stderr!.on('data', (c: Buffer) => (followedOut += c.toString()));
      while (!followedOut.includes('=== provision on')) {
        if (follower.exitCode !== null)
          throw new Error(`nightshift logs -f exited ${follower.exitCode} before printing the log: ${followedOut}`);
        await sleep(200);
      }
      await stack.restartApi(3000);
      progress(`restarted the API (3 s down) under \`nightshift logs -f ${followed}\``);

      // 4. A worker is drained by SIGTERM mid-agent: it hands its stage back and exits 0. Fresh runs, so that agents
      //    are
      // in flight however fast the first batch went; whichever original worker has one mid-agent is drained.
      for (let i = 0; i < 8; i++)
        ids.push(await stack.submit(spec(repo, AGENT, { title: `chaos drain ${i}`, approval: { required: false } })));
      const { id: drainedRun, worker: drained } = await runMidAgentOn(stack, ids, [workers[1], workers[2]]);
      const drainStarted = Date.now();
      drained.kill('SIGTERM');
      expect({
        code: await exitCode(drained),
        ...(drained.exitCode === 0 ? {} : { printed: outputTail(drained) }),
      }).toEqual({ code: 0 });
      progress(
        `SIGTERMed worker ${drained.pid} while ${drainedRun} was mid-agent; it exited 0 after ${Date.now() - drainStarted} ms`,
      );

      // Every run ends, and ends well.
      const finals: RunState[] = [];
      for (const id of ids) finals.push(await stack.waitFor(id, ['succeeded'], 300_000));
      progress(`all ${ids.length} runs succeeded`);
      // Each workflow closes once its side work ends too (webhooks, a teardown sent to a worker presumed lost, which a
      // dead worker's queue times out after NIGHTSHIFT_WORKER_QUEUE_TIMEOUT).
      for (const id of ids) {
        const handle = stack.client.workflow.getHandle(id);
        for (
          const until = Date.now() + 60_000;
          (await handle.describe()).status.name === 'RUNNING' && Date.now() < until;
        )
          await sleep(500);
        expect((await handle.describe()).status.name).toBe('COMPLETED');
      }
      expect(finals.map((s) => s.status)).toEqual(ids.map(() => 'succeeded'));
      expect(finals.find((s) => s.id === killedRun)!.reprovisions).toBeGreaterThanOrEqual(1);
      expect(finals.find((s) => s.id === drainedRun)!.reprovisions).toBeGreaterThanOrEqual(1);

      // The agent's work landed once per run: one commit beyond the base on each branch, one line of its edit.
      for (const state of finals) {
        expect({
          id: state.id,
          agentIterations: state.stages.filter((s) => s.stage === 'agent' && s.status === 'passed').length,
        }).toEqual({ id: state.id, agentIterations: 1 });
        expect({ id: state.id, commits: gitIn(repo, 'rev-list', '--count', `main..${state.branch}`).trim() }).toEqual({
          id: state.id,
          commits: '1',
        });
        expect({ id: state.id, edit: gitIn(repo, 'show', `${state.branch}:src/log.txt`) }).toEqual({
          id: state.id,
          edit: 'applied by the agent\n',
        });
      }

      // The follower rode out the API restart and printed the whole log, once, then stopped with the run.
      expect(await exitCode(follower)).toBe(0);
      expect(followedOut).toBe((await stack.api('GET', `/v1/runs/${followed}/logs`)).text);

      // Live workers hold no sandbox of an ended run (only their caches: kept checkouts, environments); the dead
      // worker's were swept by its replacement.
      const work = path.join(home, 'work');
      const sandboxesOf = (w: string) =>
        readdirSync(path.join(work, w)).filter((e) => e !== '.checkouts' && e !== '.env-cache');
      for (const w of readdirSync(work))
        expect({ worker: w, entries: sandboxesOf(w) }).toEqual({ worker: w, entries: ['owner.json'] });
      expect(leftoversOf(home, killed)).toEqual([]);

      // Stopped workers leave nothing: no sandbox dir, no cgroup, no bwrap process.
      const live = workers.filter((w) => w !== killed && w !== drained);
      for (const w of live) w.kill('SIGTERM');
      // A worker that exits otherwise says why in what it printed last.
      const ends = await Promise.all(
        live.map(async (w) => ({ code: await exitCode(w), ...(w.exitCode === 0 ? {} : { printed: outputTail(w) }) })),
      );
      expect(ends).toEqual(live.map(() => ({ code: 0 })));
      expect(workers.flatMap((w) => leftoversOf(home, w))).toEqual([]);
      expect(readdirSync(work)).toEqual([]);
      expect(pgrep(`bwrap.*${home}`)).toEqual([]);
      progress('no sandbox, cgroup or process left');
    } finally {
      follower?.kill('SIGKILL');
      for (const w of workers) w.kill('SIGKILL');
      await Promise.all(workers.map(exited));
      await stack.stop().catch(() => undefined);
      await server.stop();
    }
  },
  10 * 60_000,
);
