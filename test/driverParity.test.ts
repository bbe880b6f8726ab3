import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { openArtifactStore } from '../store/openArtifacts';
import { gitIn, makeRepo, startTestStack, type TestStack } from './helpers/stack';

// Issue 15, "both drivers give the same sandbox from inside": the same spec — `npm ci && npm test` on a fixture with
// a real lock file — passes on bwrap and on docker, each installing from the registry this machine's npm uses, through
// Nightshift's egress proxy, with TLS the machine's egress may re-sign trusted by npm, node and curl alike.

const FIXTURE = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'npm-app');
/** The registry npm on this machine reaches, from npm's own configuration (never a host written here). */
const REGISTRY = new URL(execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim());
const REGISTRY_PORT = REGISTRY.port || (REGISTRY.protocol === 'https:' ? '443' : '80');

/**
 * The fixture's files (not its node_modules), an .npmrc naming the host's registry for the sandbox's npm, and the TLS
 * probe.
 */
function fixtureFiles(): Record<string, string> {
  const files: Record<string, string> = { '.npmrc': `registry=${REGISTRY.href}\n`, 'probe/tls.js': TLS_PROBE };
  for (const name of readdirSync(FIXTURE, { recursive: true, encoding: 'utf8' })) {
    const full = path.join(FIXTURE, name);
    if (name.split(path.sep).includes('node_modules') || !statSync(full).isFile()) continue;
    files[name] = readFileSync(full, 'utf8');
  }
  return files;
}

// The agent writes down what it sees: the tools' versions, and whether curl and node reach the registry over TLS.
const AGENT = [
  'mkdir -p notes',
  '{ node --version; npm --version; npx --version; corepack --version; git --version; } > notes/tools.txt 2>&1',
  `curl -sS -o /dev/null -w '%{http_code}\\n' ${REGISTRY.href} > notes/curl.txt 2>&1`,
  `node probe/tls.js ${REGISTRY.href} > notes/node.txt 2>&1`,
].join('; ');

/**
 * Node.js has no proxy support of its own (before 24): TLS to the registry through HTTPS_PROXY by hand, and whether
 * node trusts it.
 */
const TLS_PROBE = `const http = require('http'), tls = require('tls');
const url = new URL(process.argv[2]), proxy = new URL(process.env.HTTPS_PROXY);
http.request({ host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: url.hostname + ':' + (url.port || 443) })
  .on('connect', (res, socket) => tls.connect({ socket, servername: url.hostname }, function () { console.log('trusted'); this.end(); }).on('error', (e) => console.log(e.code)))
  .on('error', (e) => console.log(e.code)).end();
`;

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

test('the same npm ci && npm test spec passes on bwrap and on docker, through the egress proxy', async () => {
  const files = fixtureFiles();
  const locked = Object.keys(JSON.parse(files['package-lock.json']).packages).filter((k) => k !== '').length;
  expect(locked).toBeGreaterThanOrEqual(100);

  const runs = await Promise.all(
    (['bwrap', 'docker'] as const).map(async (driver) => {
      const repo = makeRepo(files);
      const id = await stack.submit({
        title: `npm ci and npm test on ${driver}`,
        task: 'Write down the tools the sandbox has.',
        repo,
        agent: { kind: 'command', command: ['sh', '-c', AGENT] },
        scope: { allow: ['notes/**'] },
        checks: [{ name: 'npm', run: 'npm ci && npm test' }],
        sandbox: { driver, network: [`${REGISTRY.hostname}:${REGISTRY_PORT}`] },
        approval: { required: false },
        limits: { iterations: 1 },
      });
      return { driver, repo, id, state: await stack.waitFor(id, ['succeeded', 'failed'], 240_000) };
    }),
  );

  const store = openArtifactStore(stack.config);
  const seen: Record<string, Record<string, string>> = {};
  for (const { driver, repo, id, state } of runs) {
    const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
    expect({ driver, status: state.status, failure: state.failure }).toEqual({
      driver,
      status: 'succeeded',
      failure: undefined,
    });
    expect(state.checks).toEqual([expect.objectContaining({ name: 'npm', passed: true, exitCode: 0 })]);
    // Content, not just an exit code: npm installed the whole lock file, and mocha ran the fixture's tests.
    const checkLog = (await store.get(state.checks[0].logId)).toString();
    expect(checkLog).toMatch(new RegExp(`added ${locked} packages`));
    expect(checkLog).toMatch(/✔ sums numbers/);
    expect(checkLog).toMatch(/2 passing/);
    // Through Nightshift's proxy, which allowed the registry and nothing else.
    expect(log).toContain(`[nightshift egress] allow CONNECT ${REGISTRY.hostname}:${REGISTRY_PORT}`);
    expect(log).not.toContain('[nightshift egress] deny');
    const note = (name: string) => gitIn(repo, 'show', `${state.branch}:notes/${name}`).trim();
    seen[driver] = { tools: note('tools.txt'), curl: note('curl.txt'), node: note('node.txt') };
  }

  // The same sandbox from inside: the host's tool versions, and the registry's TLS trusted by curl and node.
  const host = (cmd: string) => execFileSync(cmd, ['--version'], { encoding: 'utf8' }).trim();
  expect(seen.bwrap.tools.split('\n')).toEqual([
    host('node'),
    host('npm'),
    host('npx'),
    host('corepack'),
    expect.stringMatching(/^git version /),
  ]);
  expect(seen.docker).toEqual({ ...seen.bwrap, tools: expect.any(String) });
  expect(seen.docker.tools.split('\n').slice(0, 4)).toEqual(seen.bwrap.tools.split('\n').slice(0, 4));
  expect(seen.docker.tools).toMatch(/^git version /m);
  expect(seen.bwrap.curl).toMatch(/^[23]\d\d$/);
  expect(seen.bwrap.node).toBe('trusted');
}, 300_000);
