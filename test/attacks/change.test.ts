import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { workerDir } from '../../workspaces/sandboxes';
import { makeRepo, startTestStack, type TestStack } from '../helpers/stack';
import { spec, VALUE_REPO } from '../helpers/specs';

// What the agent puts in its change that the host must not pass on: a secret's value (the run's own, or any token
// of a known shape) is a blocking finding, fed back to the agent and blanked wherever the change is shown. And a
// run that cannot even be provisioned gives its worker back at once.

const SECRET = `attack-secret-${randomBytes(12).toString('hex')}`;
const FOUND_TOKEN = `ghp_${randomBytes(18).toString('hex')}`;
let stack: TestStack;
let repo: string;

beforeAll(async () => {
  process.env.NS_ATTACK_SECRET = SECRET;
  // One sandbox slot: a slot a failed provision kept would hold up the next run for the claim's expiry (80 s here).
  stack = await startTestStack({
    env: { NIGHTSHIFT_ALLOWED_SECRETS: 'NS_ATTACK_SECRET', NIGHTSHIFT_MAX_SANDBOXES: '1' },
  });
  repo = makeRepo(VALUE_REPO);
});
afterAll(async () => {
  await stack?.stop();
  delete process.env.NS_ATTACK_SECRET;
});

/** Everything the API says about a run, as one text to search. */
async function everythingShown(id: string): Promise<string> {
  const routes = [`/v1/runs/${id}`, `/v1/runs/${id}/diff`, `/v1/runs/${id}/logs`];
  return (await Promise.all(routes.map((r) => stack.api('GET', r)))).map((r) => r.text).join('\n');
}

describe.each(['bwrap', 'docker'])('%s', (driver) => {
  test('the agent commits the value of a named secret → a blocking review finding naming the secret, blanked in the diff the API shows; the run never awaits approval with it', async () => {
    const agent = 'printf "2\\n" > src/value.txt; printf "db_password=%s\\n" "$NS_ATTACK_SECRET" > src/settings.txt';
    const id = await stack.submit(
      spec(repo, agent, { secrets: ['NS_ATTACK_SECRET'], limits: { iterations: 1 }, sandbox: { driver } }),
    );
    const failed = await stack.waitFor(id, ['failed']);
    expect(failed.failure?.stage).toBe('review');
    expect(failed.failure?.reason).toContain('src/settings.txt:1 adds the value of the secret NS_ATTACK_SECRET');
    expect(failed.review?.findings).toEqual([
      expect.objectContaining({ rule: 'secret', file: 'src/settings.txt', line: 1 }),
    ]);
    const shown = await everythingShown(id);
    expect(shown).toContain('+db_password=[redacted:NS_ATTACK_SECRET]');
    expect(shown).not.toContain(SECRET);
  });

  test('the finding goes back to the agent as feedback; the agent takes the secret out and the run reaches approval clean', async () => {
    const agent =
      'printf "2\\n" > src/value.txt; if grep -q "value of the secret" /nightshift/prompt.md; then rm -f src/settings.txt; else printf "%s\\n" "$NS_ATTACK_SECRET" > src/settings.txt; fi';
    const id = await stack.submit(spec(repo, agent, { secrets: ['NS_ATTACK_SECRET'], sandbox: { driver } }));
    const waiting = await stack.waitFor(id, ['awaiting_approval']);
    expect(waiting.iteration).toBe(2);
    expect(waiting.feedback).toContain('adds the value of the secret NS_ATTACK_SECRET');
    expect(waiting.review?.findings).toEqual([]);
    expect(await everythingShown(id)).not.toContain(SECRET);
    await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'test over' } });
  });

  test('a token of a known shape the agent found and committed → a finding, blanked by its shape', async () => {
    // Put together at run time: the spec (and so the agent's command line in the log) does not hold the token.
    const agent = `printf "2\\n" > src/value.txt; printf "token = '%s%s'\\n" ${FOUND_TOKEN.slice(0, 4)} ${FOUND_TOKEN.slice(4)} > src/client.txt`;
    const id = await stack.submit(spec(repo, agent, { limits: { iterations: 1 }, sandbox: { driver } }));
    const failed = await stack.waitFor(id, ['failed']);
    expect(failed.review?.findings).toEqual([
      expect.objectContaining({ rule: 'secret', file: 'src/client.txt', line: 1 }),
    ]);
    const shown = await everythingShown(id);
    expect(shown).toContain("+token = '[redacted:github-token]'");
    expect(shown).not.toContain(FOUND_TOKEN);
  });

  test('a provision that fails (no such base branch) leaves no clone on disk and frees its sandbox slot at once', async () => {
    const bad = await stack.submit(spec(repo, 'true', { base: 'no-such-branch', sandbox: { driver } }));
    const failed = await stack.waitFor(bad, ['failed']);
    expect(failed.failure?.reason).toContain('base branch "no-such-branch" does not exist');
    expect(existsSync(path.join(workerDir(stack.config.home, stack.workerName!), bad))).toBe(false);
    // The worker has one slot: the next run gets it now, not after the failed claim's expiry.
    const started = Date.now();
    const next = await stack.submit(spec(repo, 'printf "2\\n" > src/value.txt', { sandbox: { driver } }));
    await stack.waitFor(next, ['awaiting_approval'], 40_000);
    expect(Date.now() - started).toBeLessThan(40_000);
    await stack.api('POST', `/v1/runs/${next}/reject`, { body: { comment: 'test over' } });
  });
});
