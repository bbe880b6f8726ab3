// The README's first command, as a new user runs it: `nightshift up --example` starts its own Temporal dev server,
// a worker and the API, and brings the example run to awaiting_approval; the printed curl approves it.
import { execSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { keyIdOf } from '../proof/keys';
import { freePort } from './helpers/ports';
import { gitIn, tempDir } from './helpers/stack';

const CLI = path.resolve(__dirname, '..', 'cli', 'main.js');

test('up --example reaches awaiting_approval; the printed curl approves it; the repo gets the branch', async () => {
  const home = tempDir('quickstart');
  const env: NodeJS.ProcessEnv = { ...process.env, NIGHTSHIFT_HOME: home, NIGHTSHIFT_PORT: String(await freePort()), NIGHTSHIFT_TEMPORAL_PORT: String(await freePort()), NIGHTSHIFT_TEMPORAL_UI_PORT: String(await freePort()) };
  delete env.TEMPORAL_ADDRESS;
  delete env.NIGHTSHIFT_TOKEN;
  delete env.NIGHTSHIFT_WORKFLOW_BUNDLE;
  delete env.ANTHROPIC_API_KEY; // the offline example: no model API is reachable here
  const up = spawn(process.execPath, [CLI, 'up', '--example'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  up.stdout!.on('data', (d) => (out += d));
  up.stderr!.on('data', (d) => (out += d));
  const waitFor = async (re: RegExp, ms: number) => {
    const deadline = Date.now() + ms;
    while (!re.test(out)) {
      if (Date.now() > deadline || up.exitCode !== null) throw new Error(`no ${re} in the output of up:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return re.exec(out)!;
  };
  try {
    await waitFor(/The example run awaits your approval/, 120_000);
    expect(out).toMatch(/^token {6}ns_\S+ {3}\(shown once/m);
    expect(out).toContain(`Temporal   http://127.0.0.1:${env.NIGHTSHIFT_TEMPORAL_UI_PORT}`);
    const curl = (await waitFor(/^ {2}(curl -X POST .*\/approve .*)$/m, 1000))[1];
    const id = /runs\/(ns-[0-9a-f]+)\/approve/.exec(curl)![1];
    expect(out).toContain(`npx nightshift approve ${id}`);
    expect(out).toContain(`/namespaces/default/workflows/${id}`);
    // Said plainly: the example's Claude Code is talking to the scripted server, not a model.
    expect(out).toMatch(/No ANTHROPIC_API_KEY is configured, so the example's Claude Code talks to Nightshift's scripted model server/);
    const token = /^token {6}(ns_\S+)/m.exec(out)![1];
    // The signing key is made at first start, before any proof: its id is printed and served.
    const keyId = /^proofs {5}signed by (sha256:[0-9a-f]{64}) /m.exec(out)?.[1];
    expect(keyId).toBe(keyIdOf(readFileSync(path.join(home, 'keys', 'signing.pub'), 'utf8')));
    const keys = (await (await fetch(`http://127.0.0.1:${env.NIGHTSHIFT_PORT}/v1/keys`, { headers: { authorization: `Bearer ${token}` } })).json()) as { keys: { keyid: string }[] };
    expect(keys.keys[0].keyid).toBe(keyId);
    const logs = await (await fetch(`http://127.0.0.1:${env.NIGHTSHIFT_PORT}/v1/runs/${id}/logs`, { headers: { authorization: `Bearer ${token}` } })).text();
    expect(logs).toContain('agent, iteration 1: claude-code');
    expect(logs).toContain('▸ Bash: node scripts/fix-rounding.js');
    expect(logs).toContain('result: success');

    const answer = JSON.parse(execSync(`${curl} --silent --fail`, { encoding: 'utf8' }));
    expect(answer).toEqual({ id, status: 'awaiting_approval' });
    const done = await waitFor(/succeeded: branch (\S+) in (\S+) is at/, 60_000);
    const [, branch, repo] = done;
    expect(repo).toBe(path.join(home, 'repos', 'billing'));
    expect(gitIn(repo, 'log', '--format=%s', `main..${branch}`).trim()).toBe('Fix rounding in invoice totals (iteration 1)');
    expect(gitIn(repo, 'show', `${branch}:src/invoice.js`)).toContain('roundHalfEven(total)');
    // The example's test really passes on the branch (and fails on main).
    execSync(`git -C ${repo} worktree add -q ${home}/check ${branch} && node --test ${home}/check/test/`, { stdio: 'pipe' });
    expect(() => execSync(`node --test ${repo}/test/`, { stdio: 'pipe' })).toThrow();
  } finally {
    up.kill('SIGTERM');
    await new Promise((r) => (up.exitCode !== null ? r(undefined) : up.once('exit', r)));
  }
  expect(up.exitCode).toBe(0);
});
