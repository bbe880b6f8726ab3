// The README's first command, as a new user runs it: `nightshift up --example` starts its own Temporal dev server,
// a worker and the API, and brings the example run to awaiting_approval; the printed curl approves it.
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { keyIdOf } from '../proof/keys';
import { runCli } from './helpers/cli';
import { freePort } from './helpers/ports';
import { spec, VALUE_REPO } from './helpers/specs';
import { gitIn, makeRepo, tempDir } from './helpers/stack';
import { exited } from './helpers/workerProcess';

const CLI = path.resolve(__dirname, '..', 'cli', 'main.js');

/** The environment of an `up` of its own: a new home, free ports, its own dev server. */
async function upEnv(home: string, extra: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NIGHTSHIFT_HOME: home,
    NIGHTSHIFT_PORT: String(await freePort()),
    NIGHTSHIFT_TEMPORAL_PORT: String(await freePort()),
    NIGHTSHIFT_TEMPORAL_UI_PORT: String(await freePort()),
  };
  delete env.TEMPORAL_ADDRESS;
  delete env.NIGHTSHIFT_TOKEN;
  return { ...env, ...extra };
}

interface Up {
  child: ChildProcess;
  output(): string;
  /** Resolves to the match once `re` is in the output; throws if `up` ends or `ms` pass first. */
  waitFor(re: RegExp, ms: number): Promise<RegExpExecArray>;
}

/** `nightshift up` as a shell runs it: in a process group of its own, which a Ctrl-C in the terminal signals whole. */
function startUp(args: string[], env: NodeJS.ProcessEnv): Up {
  const child = spawn(process.execPath, [CLI, 'up', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return {
    child,
    output: () => out,
    async waitFor(re, ms) {
      const deadline = Date.now() + ms;
      while (!re.test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${re} in the output of up:\n${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      return re.exec(out)!;
    },
  };
}

/** The pids of the processes whose command line names `text`: a dev server names its database file. */
function processesNaming(text: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').includes(text);
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

/** Within `ms`, or throw: `up` must end on its own. */
async function endsWithin(up: Up, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>(
    (_, reject) =>
      (timer = setTimeout(() => reject(new Error(`up did not end within ${ms / 1000}s:\n${up.output()}`)), ms)),
  );
  await Promise.race([exited(up.child), late]).finally(() => clearTimeout(timer));
}

/** Whatever a failed test left: the `up` group and its home's dev server (both started by this file, by pid). */
function killLeftovers(up: Up, home: string): void {
  if (up.child.exitCode === null && up.child.signalCode === null) process.kill(-up.child.pid!, 'SIGKILL');
  for (const pid of processesNaming(path.join(home, 'temporal', 'temporal.db'))) process.kill(pid, 'SIGKILL');
}

test('up --example reaches awaiting_approval; the printed curl approves it; the repo gets the branch', async () => {
  const home = tempDir('quickstart');
  const env = await upEnv(home);
  delete env.NIGHTSHIFT_WORKFLOW_BUNDLE;
  delete env.ANTHROPIC_API_KEY; // the offline example: no model API is reachable here
  const up = startUp(['--example'], env);
  const out = up.output;
  try {
    await up.waitFor(/The example run awaits your approval/, 120_000);
    expect(out()).toMatch(/^token {6}ns_\S+ {3}\(shown once/m);
    expect(out()).toContain(`Temporal   http://127.0.0.1:${env.NIGHTSHIFT_TEMPORAL_UI_PORT}`);
    const curl = (await up.waitFor(/^ {2}(curl -X POST .*\/approve .*)$/m, 1000))[1];
    const id = /runs\/(ns-[0-9a-f]+)\/approve/.exec(curl)![1];
    expect(out()).toContain(`npx nightshift approve ${id}`);
    expect(out()).toContain(`/namespaces/default/workflows/${id}`);
    // Said plainly: the example's Claude Code is talking to the scripted server, not a model.
    expect(out()).toMatch(
      /No ANTHROPIC_API_KEY is configured, so the example's Claude Code talks to Nightshift's scripted model server/,
    );
    const token = /^token {6}(ns_\S+)/m.exec(out())![1];
    // The signing key is made at first start, before any proof: its id is printed and served.
    const keyId = /^proofs {5}signed by (sha256:[0-9a-f]{64}) /m.exec(out())?.[1];
    expect(keyId).toBe(keyIdOf(readFileSync(path.join(home, 'keys', 'signing.pub'), 'utf8')));
    const keys = (await (
      await fetch(`http://127.0.0.1:${env.NIGHTSHIFT_PORT}/v1/keys`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { keys: { keyid: string }[] };
    expect(keys.keys[0].keyid).toBe(keyId);
    const logs = await (
      await fetch(`http://127.0.0.1:${env.NIGHTSHIFT_PORT}/v1/runs/${id}/logs`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).text();
    expect(logs).toContain('agent, iteration 1: claude-code');
    expect(logs).toContain('▸ Bash: node scripts/fix-rounding.js');
    expect(logs).toContain('result: success');

    const answer = JSON.parse(execSync(`${curl} --silent --fail`, { encoding: 'utf8' }));
    expect(answer).toEqual({ id, status: 'awaiting_approval' });
    const done = await up.waitFor(/succeeded: branch (\S+) in (\S+) is at/, 60_000);
    const [, branch, repo] = done;
    expect(repo).toBe(path.join(home, 'repos', 'billing'));
    expect(gitIn(repo, 'log', '--format=%s', `main..${branch}`).trim()).toBe(
      'Fix rounding in invoice totals (iteration 1)',
    );
    expect(gitIn(repo, 'show', `${branch}:src/invoice.js`)).toContain('roundHalfEven(total)');
    // The example's test really passes on the branch (and fails on main).
    execSync(`git -C ${repo} worktree add -q ${home}/check ${branch} && node --test ${home}/check/test/`, {
      stdio: 'pipe',
    });
    expect(() => execSync(`node --test ${repo}/test/`, { stdio: 'pipe' })).toThrow();
    up.child.kill('SIGTERM');
    await endsWithin(up, 60_000);
    expect(up.child.exitCode).toBe(0);
  } finally {
    killLeftovers(up, home);
  }
});

describe('up with NIGHTSHIFT_TOKEN, stopped with Ctrl-C mid-stage', () => {
  const token = `ns_given_${randomBytes(12).toString('hex')}`;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let up: Up;

  beforeAll(async () => {
    home = tempDir('up-token');
    // The suite's dir is the repos boundary, as in the test stacks: makeRepo's repos are in it.
    env = await upEnv(home, { NIGHTSHIFT_TOKEN: token, NIGHTSHIFT_REPOS_DIR: process.env.NIGHTSHIFT_TEST_DIR! });
    up = startUp([], env);
    await up.waitFor(/^Nightshift is up\./m, 120_000);
  });
  afterAll(() => killLeftovers(up, home));

  /** The CLI on the server's machine, told nothing but where the home and the API are. */
  const localCli = (args: string[]) =>
    runCli(args, {
      NIGHTSHIFT_HOME: home,
      NIGHTSHIFT_PORT: env.NIGHTSHIFT_PORT,
      NIGHTSHIFT_URL: undefined,
      NIGHTSHIFT_TOKEN: undefined,
    });

  test('the token file it names holds the given token, and the CLI with only NIGHTSHIFT_HOME is let in', async () => {
    expect(up.output()).toContain(`(token: ${home}/token, from NIGHTSHIFT_TOKEN)`);
    expect(up.output()).not.toMatch(/^token /m);
    expect(readFileSync(path.join(home, 'token'), 'utf8')).toBe(`${token}\n`);
    expect(statSync(path.join(home, 'token')).mode & 0o777).toBe(0o600);
    const runs = await localCli(['runs', '--json']);
    expect(runs.stderr).toBe('');
    expect(runs.code).toBe(0);
    expect(JSON.parse(runs.stdout)).toEqual({ runs: [] });
  });

  test('Ctrl-C drains the worker (the running agent finishes) before the dev server stops: no refused connections, no server left', async () => {
    const repo = makeRepo(VALUE_REPO);
    const file = path.join(tempDir('up-spec'), 'slow.json');
    writeFileSync(file, JSON.stringify(spec(repo, 'sleep 4; echo 2 > src/value.txt')));
    const submitted = await localCli(['submit', file, '--json']);
    expect(submitted.code).toBe(0);
    const { id } = JSON.parse(submitted.stdout);
    const deadline = Date.now() + 60_000;
    for (let at = ''; at !== 'agent running'; await new Promise((r) => setTimeout(r, 200))) {
      if (Date.now() > deadline) throw new Error(`run ${id} did not reach a running agent (last: ${at})`);
      const run = JSON.parse((await localCli(['status', id, '--json'])).stdout);
      at = `${run.stage} ${run.stages.at(-1)?.status}`;
    }
    const database = path.join(home, 'temporal', 'temporal.db');
    expect(processesNaming(database)).toHaveLength(1);

    process.kill(-up.child.pid!, 'SIGINT'); // what the terminal does on Ctrl-C
    await endsWithin(up, 90_000);
    expect(up.child.exitCode).toBe(0);
    const out = up.output();
    expect(out.indexOf('stopping the Temporal dev server')).toBeGreaterThan(out.indexOf('draining the worker'));
    const refused = /connection refused|tcp connect error/i;
    expect(out).not.toMatch(refused);
    expect(readFileSync(path.join(home, 'logs', 'nightshift.log'), 'utf8')).not.toMatch(refused);
    expect(processesNaming(database)).toEqual([]);
  });
});

test('up that cannot start its API (the port is taken) ends with one line and leaves no dev server behind', async () => {
  const home = tempDir('up-crash');
  const taken = createServer();
  const port = await freePort();
  await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
  const up = startUp([], await upEnv(home, { NIGHTSHIFT_PORT: String(port) }));
  try {
    await endsWithin(up, 90_000);
    expect(up.child.exitCode).toBe(1);
    expect(up.output()).toMatch(/^nightshift: listen EADDRINUSE: address already in use 127\.0\.0\.1:\d+\n$/m);
    expect(processesNaming(path.join(home, 'temporal', 'temporal.db'))).toEqual([]);
  } finally {
    killLeftovers(up, home);
    taken.close();
  }
});
