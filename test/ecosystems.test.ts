import { formatRun } from '../cli/format';
import type { RunState } from '../contracts/run';
import { dockerClient } from '../sandbox/docker';
import { unpackTarGz } from '../proof/tar';
import { GO_MODULE_FILES, GO_MODULE_FIX } from '../testbed/goModule';
import { PYTHON_PROJECT_FILES, PYTHON_PROJECT_FIX } from '../testbed/pythonProject';
import { toolchainImage } from './helpers/images';
import { gitIn, makeRepo, startTestStack, type TestStack } from './helpers/stack';
import { takingTurns } from './helpers/turns';

// Every language, not only Node (issue 23; docs/ecosystems/): a Go module whose go.sum dependency comes through the
// setup's egress, and a pytest project with Debian's pytest, each on bwrap (the worker's toolchains,
// NIGHTSHIFT_TOOLCHAINS) and on docker (an image `nightshift image build` made with both, picked by
// `sandbox.toolchains` alone), with plain `go` and `pytest` in the commands. On each: a real failing test is fed
// back to the agent, which fixes it from what it read, and the fix is delivered with its test counts and canary shown;
// a skipped test and a deleted test are caught, though together they turn the check green.

type Driver = 'bwrap' | 'docker';
type Lang = 'go' | 'python';
const DRIVERS: Driver[] = ['bwrap', 'docker'];
const LANGS: Lang[] = ['go', 'python'];

interface Ecosystem {
  files: Record<string, string>;
  file: string;
  fixed: string;
  setup?: object;
  check: string;
  format: string;
  /** How the runner names the test that fails at the base, and words of its failure. */
  failing: string;
  fails: string;
  /** Shell that skips the first failing test and deletes the second: the check then passes. */
  cheat: string;
  /** The failing tests as the runner names them: the first (skipped by the cheat), the second (deleted). */
  testId: string;
  secondId: string;
}

const ECOSYSTEMS: Record<Lang, Ecosystem> = {
  go: {
    files: GO_MODULE_FILES,
    file: 'mathx.go',
    fixed: GO_MODULE_FIX,
    // The dependency through the setup's egress; the standard library compiled once into the environment's HOME (the
    // docs' spec adds `go vet`, left out here for CI's time).
    setup: {
      run: ['go mod download', 'go test -count=1 -run NONE ./...'],
      network: ['proxy.golang.org:443'],
    },
    check: 'go test -json ./...',
    format: 'go test -json',
    failing: 'TestClampAbove',
    fails: 'Clamp(15, 0, 10) = 0, want 10',
    // go-cmp's import goes with TestClampAll, its one user: the file must still compile for the check to go green.
    cheat: `sed -i 's/^func TestClampAbove(t \\*testing.T) {/&\\n\\tt.Skip("flaky")/; /^func TestClampAll(/,/^}/d; /go-cmp\\/cmp"$/d' mathx_test.go`,
    testId: 'example.com/mathx › TestClampAbove',
    secondId: 'example.com/mathx › TestClampAll',
  },
  python: {
    files: PYTHON_PROJECT_FILES,
    file: 'mathx/clamp.py',
    fixed: PYTHON_PROJECT_FIX,
    check: 'PYTHONDONTWRITEBYTECODE=1 pytest -v -p no:cacheprovider',
    format: 'pytest -v',
    failing: 'test_clamp_above',
    fails: 'assert 0 == 10',
    cheat:
      "sed -i -e 's/^def test_clamp_above():/@pytest.mark.skip(reason=\"later\")\\n&/' -e '1i import pytest' -e '/^def test_clamp_all():/,/^$/d' tests/test_clamp.py",
    testId: 'tests/test_clamp.py::test_clamp_above',
    secondId: 'tests/test_clamp.py::test_clamp_all',
  },
};

/** Iteration 1 misses the bug (a comment); iteration 2 fixes it only if the feedback named the failing test. */
function fixingAgent(e: Ecosystem): string {
  const comment = e.file.endsWith('.go') ? '// Clamp: see the tests.' : '# clamp: see the tests.';
  return [
    `if [ "$NIGHTSHIFT_ITERATION" = 1 ]; then sed -i '1i ${comment}' ${e.file}; exit 0; fi`,
    'mkdir -p notes',
    'printf "%s\\n" "$NIGHTSHIFT_FEEDBACK" > notes/feedback.txt',
    `if grep -q ${e.failing} notes/feedback.txt; then sed -i '/v > hi/{n;s/return lo/return hi/}' ${e.file}; fi`,
  ].join('\n');
}

let stack: TestStack;
let image: string;
const repos = {} as Record<Lang, string>;
const inTurn = takingTurns(4);
type Outcome = { id: string; state: RunState; logs: string };
const runs = new Map<string, Promise<Outcome>>();
const LONG = 900_000;
const key = (driver: Driver, lang: Lang, what: string) => `${driver} ${lang} ${what}`;

function spec(driver: Driver, lang: Lang, agent: string, iterations: number): object {
  const e = ECOSYSTEMS[lang];
  return {
    title: `${lang} on ${driver}`,
    task: 'Fix the bug in Clamp so that the tests pass.',
    repo: repos[lang],
    agent: { kind: 'command', command: ['sh', '-c', agent] },
    sandbox: { driver, toolchains: [lang] },
    ...(e.setup ? { setup: e.setup } : {}),
    checks: [{ name: 'test', run: e.check }],
    approval: { required: false },
    limits: { iterations },
  };
}

async function run(body: object, statuses: RunState['status'][]): Promise<Outcome> {
  const id = await stack.submit(body);
  const state = await stack.waitFor(id, statuses, LONG);
  return { id, state, logs: (await stack.api('GET', `/v1/runs/${id}/logs`)).text };
}

beforeAll(async () => {
  image = await toolchainImage(dockerClient(process.env.NIGHTSHIFT_TEST_DOCKER_HOST));
  stack = await startTestStack({
    env: {
      NIGHTSHIFT_TOOLCHAINS: 'go=/usr/local/go,python=/usr',
      NIGHTSHIFT_DOCKER_IMAGES: image,
      NIGHTSHIFT_MAX_SANDBOXES: '6',
    },
  });
  for (const lang of LANGS) repos[lang] = makeRepo(ECOSYSTEMS[lang].files);
  const start = (name: string, work: () => Promise<Outcome>) => {
    const p = inTurn(work);
    p.catch(() => undefined); // reported by its test
    runs.set(name, p);
  };
  // The fixes first: each makes its environment and baseline, which the cheats on the same base then share.
  for (const driver of DRIVERS)
    for (const lang of LANGS)
      start(key(driver, lang, 'fix'), () =>
        run(spec(driver, lang, fixingAgent(ECOSYSTEMS[lang]), 2), ['succeeded', 'failed']),
      );
  for (const driver of DRIVERS)
    for (const lang of LANGS)
      start(key(driver, lang, 'cheat'), () =>
        run(spec(driver, lang, ECOSYSTEMS[lang].cheat, 1), ['failed', 'succeeded']),
      );
}, 600_000);
afterAll(async () => {
  await stack?.stop();
});

describe.each(DRIVERS)('%s', (driver) => {
  test.each(LANGS)(
    '%s: the real failing test is fed back, the agent fixes it, and the fix is delivered with its counts and canary shown',
    async (lang) => {
      const e = ECOSYSTEMS[lang];
      const { id, state, logs } = await runs.get(key(driver, lang, 'fix'))!;
      expect({ status: state.status, failure: state.failure }).toEqual({ status: 'succeeded', failure: undefined });
      expect(state.iteration).toBe(2);
      // What iteration 2 read: the runner's own words for the failing test, from the real run in iteration 1.
      const feedback = gitIn(repos[lang], 'show', `${state.branch}:notes/feedback.txt`);
      expect(feedback).toContain(e.failing);
      expect(feedback).toContain(e.fails);
      const comment = lang === 'go' ? '// Clamp: see the tests.\n' : '# clamp: see the tests.\n';
      expect(gitIn(repos[lang], 'show', `${state.branch}:${e.file}`)).toBe(`${comment}${e.fixed}`);
      const integrity = {
        tests: { base: { ran: 3, skipped: 0 }, now: { ran: 3, skipped: 0 }, source: 'names', format: e.format },
      };
      expect(state.checks).toEqual([
        expect.objectContaining({
          name: 'test',
          passed: true,
          integrity: expect.objectContaining({
            ...integrity,
            findings: [],
            canary: expect.objectContaining({ result: 'reported' }),
          }),
        }),
      ]);
      expect(state.checks[0].unverified).toBeUndefined();
      expect(formatRun({ ...state, decisions: [] })).toContain(
        `\n        tests 3 ran, 0 skipped (base 3 ran, 0 skipped; ${e.format}, by name); canary reported failing`,
      );
      expect(logs).toMatch(
        new RegExp(
          `baseline of check test at the base \\w+[^:]*: 3 tests ran, 2 failed, 0 skipped \\(${e.format}, by name\\)`,
        ),
      );
      if (lang === 'go') {
        expect(logs).toContain('[nightshift egress] allow CONNECT proxy.golang.org:443');
      }
      // Docker: the image holding the toolchain, chosen by sandbox.toolchains alone; bwrap: the host's system.
      expect(state.agent?.image?.name).toBe(driver === 'docker' ? image : undefined);
      // The proof's test result names every test that passed.
      const res = await fetch(`${stack.apiUrl}/v1/runs/${id}/proof`, {
        headers: { authorization: `Bearer ${stack.token}` },
      });
      const files = await unpackTarGz(Buffer.from(await res.arrayBuffer()));
      const envelope = JSON.parse(files.get('attestations/test-test.json')!.toString());
      const predicate = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()).predicate;
      expect(predicate).toMatchObject({ result: 'PASSED' });
      expect(predicate.passedTests).toHaveLength(3);
      expect(predicate.passedTests).toContain(e.testId);
    },
    LONG,
  );

  test.each(LANGS)(
    '%s: the first failing test skipped, the second deleted → the check goes green, and each is caught',
    async (lang) => {
      const e = ECOSYSTEMS[lang];
      const { state } = await runs.get(key(driver, lang, 'cheat'))!;
      expect(state.status).toBe('failed');
      expect(state.stages.map((s) => s.stage)).not.toContain('deliver');
      expect(state.review?.findings).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            rule: 'tests-skipped',
            message: expect.stringContaining(`the test "${e.testId}" ran at the base and is skipped now`),
          }),
          expect.objectContaining({
            rule: 'tests-missing',
            message: expect.stringContaining(`the test "${e.secondId}" ran at the base and did not run now`),
          }),
        ]),
      );
      // The runner itself said pass: the findings, not the exit code, failed it.
      expect(state.checks[0]).toMatchObject({ exitCode: 0, passed: false });
      expect(state.checks[0].unverified).toBeUndefined();
    },
    LONG,
  );
});
