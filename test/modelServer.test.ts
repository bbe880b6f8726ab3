import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadScenario, startModelServer, type ScriptedModelServer } from '../agents/scriptedModel';

// Compiled into dist/test; the scenarios stay in the source tree.
const SCENARIOS = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'model', 'scenarios');

/** The real agent CLIs, unmodified, against the scripted model server: their tools really run, on the host. */

const BIN = path.resolve(__dirname, '..', '..', 'node_modules', '.bin');
const RUN_TIMEOUT_MS = 30_000;

type Json = Record<string, any>;

interface AgentRun {
  code: number | null;
  /** stdout's JSON lines: Claude Code's stream-json, Codex's --json events. */
  events: Json[];
  stderr: string;
}

/**
 * Runs `argv` in `cwd` with only `env` (so nothing of the host's leaks in); killed, with its children, after the
 * timeout.
 */
function run(argv: string[], cwd: string, env: Record<string, string>): Promise<AgentRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
      reject(
        new Error(`${path.basename(argv[0])} not done within ${RUN_TIMEOUT_MS} ms; stderr: ${stderr.slice(-2000)}`),
      );
    }, RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const events = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Json);
      resolve({ code, events, stderr });
    });
  });
}

/** What a test needs of one CLI: how to run it, and where its output says what it did. */
interface Agent {
  name: string;
  run(server: ScriptedModelServer, repo: string, home: string, prompt: string): Promise<AgentRun>;
  /** Shell commands the CLI reports having run. */
  commands(events: Json[]): string[];
  finalMessage(events: Json[]): string | undefined;
  outputTokens(events: Json[]): number;
}

const claude: Agent = {
  name: 'Claude Code',
  run: (server, repo, home, prompt) =>
    run(
      [
        path.join(BIN, 'claude'),
        '-p',
        prompt,
        '--output-format',
        'stream-json',
        '--verbose',
        '--dangerously-skip-permissions',
        '--model',
        'claude-sonnet-4-5',
      ],
      repo,
      {
        ANTHROPIC_BASE_URL: server.url,
        ANTHROPIC_API_KEY: 'x',
        IS_SANDBOX: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        HOME: home,
      },
    ),
  commands: (events) =>
    events
      .filter((e) => e.type === 'assistant')
      .flatMap((e) => e.message.content)
      .filter((b: Json) => b.type === 'tool_use' && b.name === 'Bash')
      .map((b: Json) => b.input.command),
  finalMessage: (events) => events.find((e) => e.type === 'result')?.result,
  outputTokens: (events) => events.find((e) => e.type === 'result')?.usage?.output_tokens ?? 0,
};

const codex: Agent = {
  name: 'Codex',
  run(server, repo, home, prompt) {
    const codexHome = path.join(home, '.codex');
    fs.mkdirSync(codexHome, { recursive: true }); // codex refuses a CODEX_HOME that does not exist
    const provider = `model_providers.ns={name="ns",base_url="${server.url}/v1",wire_api="responses",env_key="OPENAI_API_KEY"}`;
    return run(
      [
        path.join(BIN, 'codex'),
        'exec',
        '--json',
        '--skip-git-repo-check',
        '-s',
        'danger-full-access',
        '-c',
        provider,
        '-c',
        'model_provider="ns"',
        '-m',
        'gpt-5',
        prompt,
      ],
      repo,
      {
        OPENAI_API_KEY: 'x',
        CODEX_HOME: codexHome,
        HOME: home,
      },
    );
  },
  commands: (events) =>
    events.filter((e) => e.type === 'item.completed' && e.item.type === 'command_execution').map((e) => e.item.command),
  finalMessage: (events) =>
    events.filter((e) => e.type === 'item.completed' && e.item.type === 'agent_message').at(-1)?.item.text,
  outputTokens: (events) =>
    events.filter((e) => e.type === 'turn.completed').reduce((sum, e) => sum + e.usage.output_tokens, 0),
};

/** A git repo whose src/value.txt holds `1`, and an empty HOME beside it. */
function tempRepo(): { repo: string; home: string } {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-'));
  execFileSync('git', ['init', '-q'], { cwd: repo });
  fs.mkdirSync(path.join(repo, 'src'));
  fs.writeFileSync(path.join(repo, 'src', 'value.txt'), '1\n');
  return { repo, home: fs.mkdtempSync(path.join(os.tmpdir(), 'ms-home-')) };
}

const value = (repo: string) => fs.readFileSync(path.join(repo, 'src', 'value.txt'), 'utf8');
const turns = (server: ScriptedModelServer, scenario?: string) =>
  server.requests.filter((r) => r.kind === 'turn' && (scenario === undefined || r.scenario === scenario));
const errors = (server: ScriptedModelServer) =>
  server.requests.filter((r) => r.error).map((r) => `${r.path}: ${r.error}`);

describe.each([claude, codex])('$name against the scripted model server', (agent) => {
  let server: ScriptedModelServer | undefined;
  afterEach(() => server?.close());

  test('plays a shell turn that really runs, then a final message', async () => {
    const [scenario] = loadScenario(SCENARIOS, 'set-value');
    server = await startModelServer(scenario);
    const { repo, home } = tempRepo();

    const result = await agent.run(server, repo, home, 'Make src/value.txt contain 2');

    expect(errors(server)).toEqual([]);
    expect(value(repo)).toBe('2\n');
    expect(agent.commands(result.events)).toEqual([
      expect.stringContaining('sed -i s/1/2/ src/value.txt && cat src/value.txt'),
    ]);
    expect(agent.finalMessage(result.events)).toBe('Done: value is 2.');
    expect(agent.outputTokens(result.events)).toBeGreaterThan(0);
    expect(result.code).toBe(0);

    const [first, second, ...more] = turns(server);
    expect(more).toEqual([]);
    expect(first).toMatchObject({ turn: 0, toolResults: [] });
    expect(first.prompt).toContain('Make src/value.txt contain 2');
    expect(second).toMatchObject({ turn: 1, toolResults: [expect.stringMatching(/^2$/m)] });
    // credentials are not recorded
    for (const r of server.requests) {
      expect(r.headers).not.toHaveProperty('authorization');
      expect(r.headers).not.toHaveProperty('x-api-key');
    }
  });

  test('two invocations: the second, told what the first got wrong, fixes it', async () => {
    server = await startModelServer(loadScenario(SCENARIOS, 'fix-in-two-iterations'));
    const { repo, home } = tempRepo();

    const first = await agent.run(server, repo, home, 'Iteration 1: make src/value.txt contain 2');
    expect(errors(server)).toEqual([]);
    expect(first.code).toBe(0);
    expect(value(repo)).toBe('3\n');

    const second = await agent.run(
      server,
      repo,
      home,
      'Iteration 2: the check failed with "expected 2, got 3". Make src/value.txt contain 2',
    );
    expect(errors(server)).toEqual([]);
    expect(second.code).toBe(0);
    expect(value(repo)).toBe('2\n');
    expect(agent.finalMessage(second.events)).toBe('Fixed: value is 2.');

    const one = turns(server, 'iteration 1');
    const two = turns(server, 'iteration 2');
    expect(one.map((r) => r.turn)).toEqual([0, 1]);
    expect(two.map((r) => r.turn)).toEqual([0, 1]);
    expect(one[0].prompt).not.toContain('expected 2, got 3');
    expect(two[0].prompt).toContain('expected 2, got 3');
    // the edit's own report came back as the second turn's tool results
    expect(two[1].toolResults.join('\n')).toMatch(/updated successfully|exited with code 0/);
  });

  test('a prompt no scenario matches fails the run at once and is recorded', async () => {
    server = await startModelServer(loadScenario(SCENARIOS, 'set-value').map((s) => ({ ...s, when: 'never matches' })));
    const { repo, home } = tempRepo();

    const result = await agent.run(server, repo, home, 'Make src/value.txt contain 2');

    expect(result.code).not.toBe(0);
    expect(value(repo)).toBe('1\n');
    const refused = turns(server);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r.error).toMatch(/^no scenario matches the prompt/);
  });
});
