import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openArtifactStore } from '../store/openArtifacts';
import {
  startModelServer,
  type RecordedRequest,
  type Scenario,
  type ScriptedModelServer,
} from '../agents/scriptedModel';
import { gitIn, makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// The real Claude Code and Codex CLIs, unmodified, in the sandbox, on a real Temporal server. The model is the only
// stand-in: a scripted server speaking the vendors' APIs, reached through the run's model gateway.

const REAL_KEY = `sk-real-${process.pid}-stays-in-the-worker`;

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
  // The worker's model keys: the gateway injects them; no sandbox sees them.
  writeFileSync(
    path.join(stack.config.home, 'secrets.env'),
    `ANTHROPIC_API_KEY=${REAL_KEY}\nOPENAI_API_KEY=${REAL_KEY}\n`,
  );
});
afterAll(async () => {
  await stack?.stop();
});

async function withModel<T>(scenarios: Scenario[], fn: (server: ScriptedModelServer) => Promise<T>): Promise<T> {
  const server = await startModelServer(scenarios);
  // The scripted server is on loopback: only the admin can name it as a model upstream.
  stack.adminAllows({ modelUpstream: server.url });
  stack.adminAllows({ modelUpstream: `${server.url}/v1` });
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

/** The scripted turns the CLI asked for (not its housekeeping requests). */
function turns(server: ScriptedModelServer): RecordedRequest[] {
  return server.requests.filter((r) => r.kind === 'turn');
}

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

const claude = (server: ScriptedModelServer) => ({
  kind: 'claude-code',
  model: 'claude-sonnet-4-5',
  baseUrl: server.url,
});

test('Claude Code fixes a failing check in two iterations: iteration 2’s prompt carries the check’s name and log tail; transcript and summary are stored', async () => {
  await withModel(
    [
      {
        name: 'fix',
        when: 'Iteration 2[\\s\\S]*Check "value"[\\s\\S]*expected 2, got 3',
        turns: [{ edit: { path: 'src/value.txt', old: '3', new: '2' } }, { say: 'Fixed: the value is 2.' }],
      },
      { name: 'first try', turns: [{ shell: 'echo 3 > src/value.txt' }, { say: 'Done: the value is 3.' }] },
    ],
    async (server) => {
      const repo = makeRepo(VALUE_REPO);
      const id = await stack.submit(spec(repo, 'unused', { agent: claude(server) }));
      const state = await stack.waitFor(id, ['awaiting_approval'], 240_000);
      expect(state.iteration).toBe(2);
      expect(state.checks).toEqual([expect.objectContaining({ name: 'value', passed: true })]);
      expect(state.review?.verdict).toBe('approve');
      // The second conversation was the fix, and its prompt held the failed check.
      const played = turns(server);
      // One conversation per iteration, in order (a CLI may repeat a request; the order is what counts).
      expect(played.map((r) => r.scenario).filter((s, i, all) => s !== all[i - 1])).toEqual(['first try', 'fix']);
      const fixPrompt = played.find((r) => r.scenario === 'fix')!.prompt;
      expect(fixPrompt).toContain('Check "value"');
      expect(fixPrompt).toContain('expected 2, got 3');
      // Through the gateway: the server saw no credential the sandbox sent, and the worker metered the tokens.
      expect(played.every((r) => !JSON.stringify(r.headers).includes('placeholder'))).toBe(true);
      expect(state.modelUsage!.requests).toBeGreaterThanOrEqual(played.length);
      expect(state.modelUsage!.inputTokens).toBeGreaterThan(0);
      // The workspace content: the diff sets 2.
      const diff = (await stack.api('GET', `/v1/runs/${id}/diff`)).text;
      expect(diff).toMatch(/^\+2$/m);
      // The agent's summary and transcript.
      expect(state.agent?.summary).toMatchObject({ exitReason: 'success', finalMessage: 'Fixed: the value is 2.' });
      expect(state.agent!.summary!.toolCalls).toBeGreaterThanOrEqual(1);
      const transcript = (await openArtifactStore(stack.config).get(state.agent!.transcriptId!)).toString();
      expect(transcript).toContain('"type":"tool_use"');
      expect(transcript).toContain('"type":"result"');
      expect(transcript).not.toContain(REAL_KEY);
      const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
      expect(log).toMatch(/▸ (Edit|Read): .*src\/value\.txt/);
      expect(log).toContain('[nightshift model] POST /v1/messages');
      expect(log).not.toContain(REAL_KEY);
      await stack.api('POST', `/v1/runs/${id}/reject`, {});
    },
  );
});

test('Claude Code edits a file out of scope: the scope check names it, and the next iteration reverts it', async () => {
  await withModel(
    [
      {
        name: 'revert',
        when: 'Iteration 2[\\s\\S]*revert them: secrets\\.txt',
        turns: [{ shell: 'git rm -q --cached secrets.txt; rm -f secrets.txt' }, { say: 'Removed secrets.txt.' }],
      },
      { name: 'overreach', turns: [{ shell: 'echo 2 > src/value.txt && echo token > secrets.txt' }, { say: 'Done.' }] },
    ],
    async (server) => {
      const repo = makeRepo(VALUE_REPO);
      const id = await stack.submit(spec(repo, 'unused', { agent: claude(server) }));
      const state = await stack.waitFor(id, ['awaiting_approval'], 240_000);
      expect(state.iteration).toBe(2);
      expect(state.scopeViolations).toEqual([]);
      expect(state.agent?.changedFiles).toEqual(['src/value.txt']);
      expect(turns(server).find((r) => r.scenario === 'revert')!.prompt).toContain('revert them: secrets.txt');
      await stack.api('POST', `/v1/runs/${id}/reject`, {});
    },
  );
});

test('Codex runs end to end; a human’s requested changes reach its next prompt verbatim; the approved branch has both changes', async () => {
  const comment = 'Please also write notes/why.md saying "rounding".';
  await withModel(
    [
      {
        name: 'changes',
        when: 'Please also write notes/why\\.md saying "rounding"\\.',
        turns: [{ shell: 'mkdir -p notes && echo rounding > notes/why.md' }, { say: 'Added the note.' }],
      },
      { name: 'first', turns: [{ shell: 'echo 2 > src/value.txt' }, { say: 'Set the value to 2.' }] },
    ],
    async (server) => {
      const repo = makeRepo(VALUE_REPO);
      const id = await stack.submit(
        spec(repo, 'unused', { agent: { kind: 'codex', model: 'gpt-5', baseUrl: `${server.url}/v1` } }),
      );
      const first = await stack.waitFor(id, ['awaiting_approval'], 240_000);
      expect(first.agent?.summary).toMatchObject({ exitReason: 'completed', finalMessage: 'Set the value to 2.' });
      expect((await stack.api('POST', `/v1/runs/${id}/request-changes`, { body: { comment } })).status).toBe(202);
      const second = await stack.waitFor(id, ['awaiting_approval'], 240_000);
      expect(second.iteration).toBe(2);
      expect(turns(server).find((r) => r.scenario === 'changes')!.prompt).toContain(comment);
      expect(turns(server).every((r) => r.api === 'openai')).toBe(true);
      await stack.api('POST', `/v1/runs/${id}/approve`, {});
      const done = await stack.waitFor(id, ['succeeded']);
      expect(gitIn(repo, 'show', `${done.branch}:src/value.txt`)).toBe('2\n');
      expect(gitIn(repo, 'show', `${done.branch}:notes/why.md`)).toBe('rounding\n');
    },
  );
});

test('with review.agent, a second, read-only Claude Code pass reviews the diff; its findings (file and line) drive the next iteration', async () => {
  await withModel(
    [
      {
        name: 'review: changes',
        when: 'You are reviewing[\\s\\S]*\\+TODO',
        turns: [
          { shell: 'echo scribble > src/value.txt' },
          {
            say: '{"verdict": "changes", "findings": [{"file": "notes/todo.txt", "line": 1, "message": "remove the TODO note"}]}',
          },
        ],
      },
      {
        name: 'review: approve',
        when: 'You are reviewing',
        turns: [{ say: 'The change does the task.\n{"verdict": "approve", "findings": []}' }],
      },
      {
        name: 'cleanup',
        when: 'Iteration 2[\\s\\S]*notes/todo\\.txt:1: remove the TODO note',
        turns: [{ shell: 'rm notes/todo.txt' }, { say: 'Removed the note.' }],
      },
      {
        name: 'first',
        turns: [{ shell: 'echo 2 > src/value.txt && mkdir -p notes && echo TODO > notes/todo.txt' }, { say: 'Done.' }],
      },
    ],
    async (server) => {
      const id = await stack.submit(
        spec(makeRepo(VALUE_REPO), 'unused', { agent: claude(server), review: { agent: true } }),
      );
      const state = await stack.waitFor(id, ['awaiting_approval'], 240_000);
      expect(state.iteration).toBe(2);
      expect(
        turns(server)
          .map((r) => r.scenario)
          .filter((s, i, all) => s !== all[i - 1]),
      ).toEqual(['first', 'review: changes', 'cleanup', 'review: approve']);
      expect(turns(server).find((r) => r.scenario === 'review: changes')!.prompt).toContain('+TODO');
      expect(state.review).toMatchObject({ verdict: 'approve', findings: [] });
      const report = JSON.parse((await openArtifactStore(stack.config).get(state.review!.reportId!)).toString());
      expect(report).toMatchObject({
        verdict: 'approve',
        reviewer: { kind: 'claude-code', summary: { exitReason: 'success' } },
        discardedWrites: [],
      });
      // The first reviewer's write was discarded: the reviewed commit went on unchanged.
      const diff = (await stack.api('GET', `/v1/runs/${id}/diff`)).text;
      expect(diff).toMatch(/^\+2$/m);
      expect(diff).not.toContain('scribble');
      expect(diff).not.toContain('notes/todo.txt');
      await stack.api('POST', `/v1/runs/${id}/reject`, {});
    },
  );
});

test('Claude Code runs in the docker driver’s container too, from the CLI baked into the image', async () => {
  await withModel(
    [
      {
        name: 'docker',
        turns: [{ shell: 'echo 2 > src/value.txt; cat /proc/1/comm' }, { say: 'Done in a container.' }],
      },
    ],
    async (server) => {
      const id = await stack.submit(
        spec(makeRepo(VALUE_REPO), 'unused', { agent: claude(server), sandbox: { driver: 'docker' } }),
      );
      const state = await stack.waitFor(id, ['awaiting_approval'], 240_000);
      expect(state.agent?.summary).toMatchObject({ exitReason: 'success', finalMessage: 'Done in a container.' });
      // The tool ran in the container (its PID 1 is `sleep`), and its output went back to the model.
      expect(turns(server)[1].toolResults.join('\n')).toContain('sleep');
      expect((await stack.api('GET', `/v1/runs/${id}/diff`)).text).toMatch(/^\+2$/m);
      await stack.api('POST', `/v1/runs/${id}/reject`, {});
    },
  );
});

test('Claude Code hanging in a tool is killed at sandbox.timeout: the run fails "agent timed out", no process left', async () => {
  const marker = `${Math.floor(Math.random() * 1e6) + 5000}`;
  await withModel([{ name: 'hang', turns: [{ shell: `sleep ${marker}` }, { say: 'never' }] }], async (server) => {
    const id = await stack.submit(
      spec(makeRepo(VALUE_REPO), 'unused', { agent: claude(server), sandbox: { timeout: '20s' } }),
    );
    const state = await stack.waitFor(id, ['failed'], 120_000);
    expect(state.failure).toEqual({ stage: 'agent', reason: 'agent timed out after 20s' });
    expect(turns(server)[0].scenario).toBe('hang');
    expect(pgrep(`sleep ${marker}`)).toBe('');
  });
});

test('tasks: auto with Claude Code: a link to the worker’s secrets and a list setting its own checks are refused as feedback; the plan proposed is corrected through the API, approved, and run', async () => {
  const list = (tasks: object[]) =>
    `mkdir -p .nightshift && cat > .nightshift/tasks.json <<'EOF'\n${JSON.stringify({ tasks })}\nEOF`;
  const secrets = path.join(stack.config.home, 'secrets.env');
  await withModel(
    [
      {
        name: 'plan: third',
        when: 'previous list was refused[\\s\\S]*Unrecognized key',
        turns: [{ shell: list([{ id: 'value', task: 'Set src/value.txt to 2.', needs: [] }]) }, { say: 'Planned.' }],
      },
      {
        name: 'plan: second',
        when: 'previous list was refused[\\s\\S]*no \\.nightshift/tasks\\.json was written',
        // A planner that sets its tasks' checks could have them judged by nothing.
        turns: [{ shell: list([{ id: 'value', task: 'x', needs: [], checks: [] }]) }, { say: 'Planned.' }],
      },
      {
        name: 'plan: first',
        when: '# Plan: ',
        turns: [
          { shell: `mkdir -p .nightshift && ln -s ${secrets} .nightshift/tasks.json && echo 9 > src/value.txt` },
          { say: 'Planned.' },
        ],
      },
      {
        name: 'task: value',
        when: 'This task \\(value\\)',
        turns: [{ shell: 'echo 2 > src/value.txt' }, { say: 'Set.' }],
      },
      {
        name: 'task: note',
        when: 'This task \\(note\\)',
        turns: [{ shell: 'echo rounding > notes/why.md' }, { say: 'Noted.' }],
      },
    ],
    async (server) => {
      const repo = makeRepo({ ...VALUE_REPO, 'notes/.keep': '' });
      const plan = spec(repo, 'unused', {
        agent: claude(server),
        task: 'Make src/value.txt contain 2, and say why in notes/why.md.',
        tasks: 'auto',
        limits: { iterations: 3 },
      });
      const id = await stack.submit(plan);
      const proposed = await stack.waitFor(id, ['awaiting_plan_approval'], 240_000);
      expect(proposed.proposal).toMatchObject({ by: 'agent', tasks: [{ id: 'value', needs: [] }] });
      expect(proposed.tasks!.map((t) => [t.id, t.state])).toEqual([['value', 'waiting']]);
      const played = turns(server)
        .map((r) => r.scenario)
        .filter((s, i, all) => s !== all[i - 1]);
      expect(played).toEqual(['plan: first', 'plan: second', 'plan: third']);
      // The link was read in the sandbox, where the worker's file is not: the planner heard only that no list came.
      const second = turns(server).find((r) => r.scenario === 'plan: second')!.prompt;
      expect(second).toContain(`- no .nightshift/tasks.json was written`);
      const planning = await stack.state(`${id}-planning`);
      expect(planning).toMatchObject({ status: 'succeeded', iteration: 3, plan: { id, task: 'planning' } });
      expect(JSON.stringify([planning, proposed, turns(server).map((r) => r.prompt)])).not.toContain(REAL_KEY);

      // Corrections held to a submitted plan's rules change nothing; a request for changes is no way to correct.
      const put = (body: object) => stack.api('PUT', `/v1/runs/${id}/tasks`, { body });
      const cycle = await put({ tasks: [{ id: 'value', task: 'x', needs: ['value'] }] });
      expect([cycle.status, cycle.body.error.message]).toEqual([
        400,
        'tasks.0.needs.0: task "value" cannot need itself',
      ]);
      const judged = await put({ tasks: [{ id: 'value', task: 'x', checks: [] }] });
      expect([judged.status, judged.body.error.message]).toEqual([400, 'tasks.0: Unrecognized key: "checks"']);
      const asked = await stack.api('POST', `/v1/runs/${id}/request-changes`, { body: { comment: 'more' } });
      expect(asked.status).toBe(409);
      expect((await stack.state(id)).proposal!.by).toBe('agent');

      const corrected = await put({
        comment: 'and say why',
        tasks: [
          { id: 'value', task: 'Set src/value.txt to 2.', needs: [] },
          { id: 'note', task: 'Write notes/why.md saying "rounding".', needs: ['value'] },
        ],
      });
      expect(corrected.status).toBe(202);
      await waitUntil(async () => (await stack.state(id)).proposal!.tasks.length === 2);
      expect((await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'go' } })).status).toBe(202);
      const waiting = await stack.waitFor(id, ['awaiting_approval'], 240_000);
      expect(waiting.tasks!.map((t) => [t.id, t.state])).toEqual([
        ['value', 'passed'],
        ['note', 'passed'],
      ]);
      expect(waiting.proposal).toMatchObject({ by: 'admin', comment: 'and say why' });
      expect(waiting.decisions).toMatchObject([{ kind: 'approve', comment: 'go', verified: true }]);
      expect((await stack.api('POST', `/v1/runs/${id}/approve`, { body: {} })).status).toBe(202);
      const done = await stack.waitFor(id, ['succeeded', 'failed'], 120_000);
      expect(done.status).toBe('succeeded');
      // The tasks started from the plan's base, not the planner's workspace (where it wrote 9); their work was
      // delivered.
      expect((await stack.api('GET', `/v1/runs/${id}-value/diff`)).text).toMatch(/^-1\n\+2$/m);
      expect(gitIn(repo, 'show', `${done.branch}:src/value.txt`).trim()).toBe('2');
      expect(gitIn(repo, 'show', `${done.branch}:notes/why.md`).trim()).toBe('rounding');
    },
  );
});

async function waitUntil(ok: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 30_000; !(await ok()); await new Promise((r) => setTimeout(r, 200)))
    if (Date.now() > deadline) throw new Error('not within 30 s');
}
