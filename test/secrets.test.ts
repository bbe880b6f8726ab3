import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { unpackTarGz } from '../proof/tar';
import { openArtifactStore } from '../store/openArtifacts';
import { spec, VALUE_REPO } from './helpers/specs';

const SECRET = `s3cr3t-${randomBytes(12).toString('hex')}`;
const UNNAMED = `unnamed-${randomBytes(12).toString('hex')}`;
// A token no spec names (one the agent found in the repo, say): redacted by its shape.
const FOUND_TOKEN = `ghp_${randomBytes(18).toString('hex')}`;
let stack: TestStack;

beforeAll(async () => {
  // The worker's own environment holds the values; the spec names only NS_TEST_TOKEN.
  process.env.NS_TEST_TOKEN = SECRET;
  process.env.NS_UNNAMED_TOKEN = UNNAMED;
  stack = await startTestStack({
    env: { NIGHTSHIFT_ALLOWED_SECRETS: 'NS_TEST_TOKEN,NS_MISSING_TOKEN,NS_UNNAMED_TOKEN' },
  });
});
afterAll(async () => {
  await stack?.stop();
  delete process.env.NS_TEST_TOKEN;
  delete process.env.NS_UNNAMED_TOKEN;
});

/** Files under `dir` whose bytes contain `value` (grep reads binary files too). */
function filesContaining(dir: string, value: string): string[] {
  try {
    return execFileSync('grep', ['-rl', '--binary-files=text', value, dir], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
  } catch {
    return []; // grep exits 1 when nothing matches
  }
}

test('a named secret reaches the agent and the checks; neither its value nor a token of a known shape the agent prints is in any log, artifact, proof bundle or Temporal database', async () => {
  const repo = makeRepo(VALUE_REPO);
  // The agent prints the value in two chunks (so a naive per-chunk redaction would miss it), and dumps its env.
  const agent =
    'printf "tok=%s" "$(echo $NS_TEST_TOKEN | cut -c1-10)"; sleep 0.3; printf "%s\\n" "$(echo $NS_TEST_TOKEN | cut -c11-)"; echo "$NS_TEST_TOKEN" >&2; env; echo 2 > src/value.txt; ' +
    `printf "found ${FOUND_TOKEN.slice(0, 15)}"; sleep 0.3; printf "${FOUND_TOKEN.slice(15)} in the repo\\n"`;
  const id = await stack.submit(
    spec(repo, agent, {
      secrets: ['NS_TEST_TOKEN'],
      checks: [
        {
          name: 'sees-secret',
          run: 'test -n "$NS_TEST_TOKEN" && echo "length ${#NS_TEST_TOKEN}" && echo "$NS_TEST_TOKEN"',
        },
      ],
    }),
  );
  await stack.waitFor(id, ['awaiting_approval']);
  await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'ok' } });
  const done = await stack.waitFor(id, ['succeeded']);

  const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
  expect(log).toContain('tok=[redacted:NS_TEST_TOKEN]');
  expect(log).toContain(`length ${SECRET.length}`);
  expect(log).toContain('NS_TEST_TOKEN=[redacted:NS_TEST_TOKEN]');
  expect(log).not.toContain(SECRET);
  expect(log).toContain('found [redacted:github-token] in the repo');
  // A secret the spec does not name never enters the sandbox, though the worker has it.
  expect(log).not.toContain('NS_UNNAMED_TOKEN');
  expect(log).not.toContain(UNNAMED);
  expect(JSON.stringify(done)).not.toContain(SECRET);

  for (const value of [SECRET, FOUND_TOKEN]) expect(filesContaining(stack.config.home, value)).toEqual([]);
  // The proof bundle is compressed: grep its files, not the .tar.gz.
  const proof = await unpackTarGz(await openArtifactStore(stack.config).get(done.proofId!));
  expect(proof.get('logs/agent.log')!.toString()).toContain('tok=[redacted:NS_TEST_TOKEN]');
  expect(
    [...proof].filter(([, content]) => content.includes(SECRET) || content.includes(FOUND_TOKEN)).map(([name]) => name),
  ).toEqual([]);
  const temporalDir = path.join(process.env.NIGHTSHIFT_TEST_DIR!, 'temporal');
  for (const value of [SECRET, FOUND_TOKEN]) expect(filesContaining(temporalDir, value)).toEqual([]);
  // The grep can find things: the run id is in the Temporal database.
  expect(filesContaining(temporalDir, id).length).toBeGreaterThan(0);
});

test('a secret the server does not allow is refused at submit; one without a value fails the run clearly', async () => {
  const repo = makeRepo(VALUE_REPO);
  const refused = await stack.api('POST', '/v1/runs', {
    body: spec(repo, 'true', { secrets: ['AWS_SECRET_ACCESS_KEY'] }),
  });
  expect(refused.status).toBe(400);
  expect(refused.body.error.message).toBe(
    'invalid spec: secrets: AWS_SECRET_ACCESS_KEY is not allowed on this server (NIGHTSHIFT_ALLOWED_SECRETS)',
  );

  const id = await stack.submit(spec(repo, 'true', { secrets: ['NS_MISSING_TOKEN'] }));
  const state = await stack.waitFor(id, ['failed']);
  expect(state.failure).toMatchObject({
    stage: 'agent',
    reason: expect.stringMatching(
      /^secret NS_MISSING_TOKEN has no value on worker \S+: set it in its environment or in .*secrets\.env$/,
    ),
  });
});
