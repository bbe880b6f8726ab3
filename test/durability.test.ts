import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { Client } from '@temporalio/client';
import { gitIn, makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';
import { startKillableTemporal, suiteTemporalKind } from './helpers/temporalServer';
import { exited, startWorkerProcess } from './helpers/workerProcess';
import { stateQuery } from '../workflows/messages';
import { TemporalConnection } from '../temporal/connection';

async function waitForLog(stack: TestStack, id: string, text: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await stack.api('GET', `/v1/runs/${id}/logs`);
    if (res.text.includes(text)) return res.text;
    if (Date.now() > deadline) throw new Error(`log of ${id} never showed "${text}":\n${res.text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('SIGKILL of the worker mid-agent: a new worker finishes the run, with the agent work applied once', async () => {
  const stack = await startTestStack({ worker: false });
  const first = startWorkerProcess(stack.env);
  let second: ChildProcess | undefined;
  try {
    const repo = makeRepo(VALUE_REPO);
    // The agent appends a line, then works for a while: a second, overlapping application would show twice.
    const id = await stack.submit(
      spec(
        repo,
        'echo "applied by the agent" >> src/log.txt; echo 2 > src/value.txt; echo agent-started; sleep 8; echo agent-done',
      ),
    );
    const before = await waitForLog(stack, id, 'agent-started');
    const deadWorker = /=== provision on (\S+) ===/.exec(before)![1];
    const deadCgroup = `/sys/fs/cgroup/pids/nightshift/${deadWorker}`;
    first.kill('SIGKILL');
    await exited(first);
    // The killed worker leaves its cgroup behind: the next worker on this machine must sweep it.
    expect(existsSync(deadCgroup)).toBe(true);
    second = startWorkerProcess(stack.env);
    const state = await stack.waitFor(id, ['awaiting_approval'], 120_000);
    expect(state.reprovisions).toBe(1);
    expect(state.stages.filter((s) => s.stage === 'agent' && s.status === 'passed')).toHaveLength(1);
    const diff = (await stack.api('GET', `/v1/runs/${id}/diff`)).text;
    expect(diff.match(/applied by the agent/g)).toHaveLength(1);
    const log = await waitForLog(stack, id, 'agent-done');
    expect(log.match(/=== provision on /g)).toHaveLength(2);
    // The dead worker's sandbox was swept by the new worker on this machine; the live one released its own.
    const work = path.join(stack.config.home, 'work');
    expect(readdirSync(work).filter((w) => existsSync(path.join(work, w, id)))).toEqual([]);
    expect(existsSync(deadCgroup)).toBe(false);
    await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'ok' } });
    const done = await stack.waitFor(id, ['succeeded'], 60_000);
    expect(gitIn(repo, 'show', `${done.branch}:src/log.txt`)).toBe('applied by the agent\n');
  } finally {
    first.kill('SIGKILL');
    second?.kill('SIGTERM');
    if (second) await exited(second);
    await stack.stop();
  }
});

// The suite's kind of server (PostgreSQL under `npm run test:cluster`), a fresh one of its own to stop.
test(`restarting the Temporal server (${suiteTemporalKind()}) on the same database keeps the run and its state`, async () => {
  const server = await startKillableTemporal();
  const stack = await startTestStack({ worker: false, temporalAddress: server.address });
  let worker = startWorkerProcess(stack.env);
  try {
    const repo = makeRepo(VALUE_REPO);
    const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt'));
    const before = await stack.waitFor(id, ['awaiting_approval'], 90_000);

    worker.kill('SIGTERM');
    await exited(worker);
    // Killed, as when its host dies (PostgreSQL, under test:cluster, stays up); it comes back on the same database.
    expect(await server.kill()).toBe('SIGKILL');
    // The run lives in this server's own database, the one it comes back on: PostgreSQL's, or the dev server's SQLite
    // file.
    expect(server.sql('temporal', `SELECT count(*) FROM executions WHERE workflow_id = '${id}'`).trim()).toBe('1');
    await server.restart();
    worker = startWorkerProcess(stack.env);

    // A fresh client (the old connection's server is gone) finds the run and its state.
    const connection = await TemporalConnection.open({ address: server.address });
    try {
      const client = new Client({ connection });
      const after = await client.workflow.getHandle(id).query(stateQuery);
      expect(after.status).toBe('awaiting_approval');
      expect(after.stages).toEqual(before.stages);
      expect(after.diffId).toBe(before.diffId);
      await client.workflow.getHandle(id).signal('approve', { comment: 'after restart', by: 'test' });
      const deadline = Date.now() + 60_000;
      let final = after;
      while (final.status !== 'succeeded' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 300));
        final = await client.workflow.getHandle(id).query(stateQuery);
      }
      expect(final.status).toBe('succeeded');
      expect(gitIn(repo, 'show', `${final.branch}:src/value.txt`)).toBe('2\n');
    } finally {
      await connection.close();
    }
  } finally {
    worker.kill('SIGTERM');
    await exited(worker);
    await stack.stop().catch(() => undefined);
    await server.stop();
  }
});
