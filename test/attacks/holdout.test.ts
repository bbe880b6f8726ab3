// Issue 12, "Hold-out checks": tests the agent never sees catch a change that special-cases the tests it does see.
// The hidden set lives on the server (NIGHTSHIFT_HOLDOUT_DIR), runs in a sandbox of its own, and leaves nothing of
// itself anywhere the agent, the API or the proof can show: only which check failed, its counts and its digest.
// Real API, worker, Temporal, git, bubblewrap and Podman.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { workerDir } from '../../workspaces/sandboxes';
import { runStartOptions } from '../../api/submit';
import { unpackTarGz } from '../../proof/tar';
import { SpecSchema } from '../../spec/schema';
import type { ReviewFinding, RunState } from '../../contracts/run';
import { JUDGED_APP, JUDGED_APP_FIX, JUDGED_APP_HOLDOUT } from '../fixtures/judgedApp';
import { makeRepo, startTestStack, tempDir, type TestStack } from '../helpers/stack';
import { takingTurns } from '../helpers/turns';
import { spec } from '../helpers/specs';

/** In every hidden file and in every line the hidden runner prints; never in the spec or an agent's command line. */
const CANARY = `holdout-canary-${randomBytes(10).toString('hex')}`;
const [CANARY_HEAD, CANARY_TAIL] = [CANARY.slice(0, 12), CANARY.slice(12)];

const REPO = {
  // Wrong for every input: the visible test pins only square(2).
  'src/square.js': 'module.exports = function square(x) { return x + 1; };\n',
  'test/visible.js':
    "const assert = require('assert');\nassert.strictEqual(require('../src/square')(2), 4);\nconsole.log('visible test passed (VISIBLE-MARKER)');\n",
  'README.md': 'Squares.\n',
  // Ignored files survive the clean before each agent stage: hidden files that ever reached the agent's workspace stay
  // to be found.
  '.gitignore': 'holdout/\n',
};

/** The hold-out set "squares": a runner and a file of more cases, at paths under holdout/ in the workspace. */
const HIDDEN: Record<string, string> = {
  'holdout/run.js': [
    `// ${CANARY}`,
    "const square = require('../src/square');",
    "const cases = [[3, 9], [7, 49], [-4, 16], [10, 100], ...require('./cases/more')];",
    'let pass = 0, fail = 0;',
    'for (const [x, want] of cases) {',
    '  const got = square(x);',
    `  if (got === want) { pass++; console.log(\`ok ${CANARY} square(\${x})\`); }`,
    `  else { fail++; console.log(\`not ok ${CANARY} square(\${x}) = \${got}, wanted \${want}\`); }`,
    '}',
    // A JUnit report naming the hidden cases, for a check with `junit`: only its totals may leave the sandbox.
    `require('fs').writeFileSync(__dirname + '/report.xml', \`<testsuite name="${CANARY}" tests="\${pass + fail}" failures="\${fail}" errors="0" skipped="0"></testsuite>\`);`,
    'console.log(`# pass ${pass}`);',
    'console.log(`# fail ${fail}`);',
    'process.exit(fail ? 1 : 0);',
    '',
  ].join('\n'),
  'holdout/cases/more.js': `// ${CANARY}\nmodule.exports = [[5, 25], [12, 144]];\n`,
};

const CHECKS = [
  { name: 'visible', run: 'node test/visible.js' },
  { name: 'hidden', run: 'node holdout/run.js', holdout: 'squares' },
];

const CHEAT =
  "printf 'module.exports = function square(x) { if (x === 2) return 4; return x + 1; };\\n' > src/square.js";
const HONEST = "printf 'module.exports = function square(x) { return x * x; };\\n' > src/square.js";

/**
 * What the agent can read, searched for the hidden files' text: every readable file but the system's (and this
 * scan's own output), for the canary (put together at run time) and for the visible test's marker (so a scan that
 * read nothing cannot pass). Plus the prompt it was given, feedback included.
 */
const SCAN = [
  `C="$(printf %s%s ${CANARY_HEAD} ${CANARY_TAIL})"`,
  'find / \\( -path /proc -o -path /sys -o -path /dev -o -path /usr -o -path /lib -o -path /lib32 -o -path /lib64 -o -path /libx32 -o -path /bin -o -path /sbin -o -path /opt -o -path /workspace/notes \\) -prune -o -type f -readable -print 2>/dev/null > /tmp/files',
  'echo "files-read: $(wc -l < /tmp/files)" > notes/scan.txt',
  'echo "canary-hits: $(xargs -d \'\\n\' grep -laF -e "$C" < /tmp/files 2>/dev/null | wc -l)" >> notes/scan.txt',
  "echo \"visible-hits: $(xargs -d '\\n' grep -laF -e VISIBLE-MARKER < /tmp/files 2>/dev/null | tr '\\n' ' ')\" >> notes/scan.txt",
  'cp /nightshift/prompt.md notes/prompt.md',
].join('; ');

let stack: TestStack;
let repo: string;
let holdoutDir: string;
/**
 * Outside the holdout dir: a directory a link in it points to, and a host file and directory an agent's links point to.
 */
let outside: string;
let hostFile: string;
let hostDir: string;

/** The set's digest as docs/holdout.md defines it, computed here from the files themselves. */
function expectedDigest(): string {
  const lines = Object.keys(HIDDEN)
    .sort()
    .map((rel) => `${rel}\0${createHash('sha256').update(HIDDEN[rel]).digest('hex')}\n`);
  return `sha256:${createHash('sha256').update(lines.join('')).digest('hex')}`;
}

function holdoutSpec(agentScript: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return spec(repo, agentScript, {
    title: 'Square numbers',
    task: 'Make square(x) in src/square.js return x squared.',
    checks: CHECKS,
    ...extra,
  });
}

/** Every file under `dir`, as one text (what the server wrote in plain: run logs, stored logs, diffs, states). */
function allText(dir: string): string {
  let text = '';
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) text += allText(p);
    else if (entry.isFile() && statSync(p).size < 64 * 1024 ** 2) text += readFileSync(p, 'latin1');
  }
  return text;
}

/** Everything the API says about a run, as one text to search. */
async function everythingShown(id: string): Promise<string> {
  const routes = [`/v1/runs/${id}`, `/v1/runs/${id}/diff`, `/v1/runs/${id}/logs`];
  return (await Promise.all(routes.map((r) => stack.api('GET', r)))).map((r) => r.text).join('\n');
}

/** Hold-out sandboxes left on the worker's disk. */
function holdoutSandboxes(): string[] {
  return readdirSync(workerDir(stack.config.home, stack.workerName!)).filter((e) => e.includes('-holdout-'));
}

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

async function runCount(): Promise<number> {
  return (await stack.client.workflow.count(`WorkflowType = 'specRun' AND TaskQueue = '${stack.config.taskQueue}'`))
    .count;
}

beforeAll(async () => {
  holdoutDir = tempDir('holdout');
  for (const [rel, content] of Object.entries(HIDDEN)) {
    mkdirSync(path.dirname(path.join(holdoutDir, 'squares', rel)), { recursive: true });
    writeFileSync(path.join(holdoutDir, 'squares', rel), content);
  }
  outside = tempDir('outside-holdout');
  writeFileSync(path.join(outside, 'run.js'), `// ${CANARY}\n`);
  symlinkSync(outside, path.join(holdoutDir, 'escape'));
  hostFile = path.join(tempDir('host'), 'precious.txt');
  writeFileSync(hostFile, 'HOST ORIGINAL\n');
  hostDir = tempDir('host-dir');
  mkdirSync(path.join(holdoutDir, 'slow', 'holdout'), { recursive: true });
  writeFileSync(path.join(holdoutDir, 'slow', 'holdout', 'slow.js'), `// ${CANARY}\n`);
  stack = await startTestStack({ env: { NIGHTSHIFT_HOLDOUT_DIR: holdoutDir } });
  repo = makeRepo(REPO);
});
afterAll(async () => {
  await stack?.stop();
});

describe.each(['bwrap', 'docker'])('%s', (driver) => {
  test("the agent special-cases the visible test (square(2) → 4) → the visible check passes, the hold-out check fails; its feedback names it and its count, and no byte of the hidden tests is anywhere the agent, the API or the server's files show", async () => {
    const id = await stack.submit(holdoutSpec(`${CHEAT}; ${SCAN}`, { sandbox: { driver } }));
    const failed = await stack.waitFor(id, ['failed'], 180_000);
    expect(failed.iteration).toBe(2);
    expect(failed.failure?.stage).toBe('checks');
    const [visible, hidden] = failed.checks;
    expect(visible).toMatchObject({ name: 'visible', passed: true });
    expect(hidden).toMatchObject({
      name: 'hidden',
      passed: false,
      exitCode: 1,
      holdout: { set: 'squares', digest: expectedDigest(), files: 2, tests: { passed: 0, failed: 6 } },
    });
    expect(hidden.logTail).toContain('hold-out check hidden failed (exit 1): 6 of 6 tests failed');
    for (const text of [failed.failure!.reason, failed.feedback!]) {
      expect(text).toContain(
        'Hold-out check "hidden" (`node holdout/run.js`) failed with exit code 1; 6 of its 6 tests failed.',
      );
    }

    const shown = await everythingShown(id);
    expect(shown).not.toContain(CANARY);
    // The agent's own view in iteration 2, after a hold-out check had run: the feedback reached it, the hidden files
    // did not.
    const diff = (await stack.api('GET', `/v1/runs/${id}/diff`)).text;
    expect(diff).toContain('+  - hidden: `node holdout/run.js` (a hold-out check');
    expect(diff).toContain('Hold-out check "hidden"');
    expect(diff).toMatch(/\+visible-hits: .*\/workspace\/test\/visible\.js/);
    expect(Number(/\+files-read: (\d+)/.exec(diff)?.[1])).toBeGreaterThan(5);
    expect(diff).toContain('+canary-hits: 0');
    // Nothing the server wrote in plain holds it, and the hold-out sandboxes are gone.
    expect(allText(stack.config.home)).not.toContain(CANARY);
    expect(holdoutSandboxes()).toEqual([]);
  });

  test("the honest fix passes both checks and reaches approval; the proof carries the set's name and digest, and no byte of the hidden tests (nor their JUnit report); a set no canary can be planted in is unverifiable, said on the check and in the review", async () => {
    const withJunit = [CHECKS[0], { ...CHECKS[1], junit: 'holdout/report.xml' }];
    const id = await stack.submit(holdoutSpec(HONEST, { checks: withJunit, sandbox: { driver } }));
    const waiting = await stack.waitFor(id, ['awaiting_approval'], 120_000);
    expect(waiting.checks[1].junit).toBeUndefined();
    expect(waiting.iteration).toBe(1);
    expect(waiting.checks.map((c) => [c.name, c.passed])).toEqual([
      ['visible', true],
      ['hidden', true],
    ]);
    expect(waiting.checks[1].holdout).toEqual({
      set: 'squares',
      digest: expectedDigest(),
      files: 2,
      tests: { passed: 6, failed: 0 },
    });
    // Its runner counts its cases by hand: no canary can be planted in the set, so the check is unverifiable, and
    // says so on the check and in the review (not blocking), never silently green.
    expect(waiting.checks[1].integrity).toMatchObject({
      findings: [],
      tests: { base: { ran: 6 }, now: { ran: 6 } },
      canary: { off: expect.stringMatching(/^unverifiable: the set holds no test a canary can be made of/) },
    });
    // So is the visible check, a script that prints no test counts (docs/checks.md, "Unverified checks").
    expect(waiting.checks[0].unverified).toMatch(/^no test counts could be read neither at the base nor now/);
    expect(waiting.review?.notes).toEqual([
      expect.stringMatching(/^Check "visible" is unverified: no test counts could be read/),
      expect.stringMatching(/^Hold-out check "hidden" is unverifiable: the set holds no test a canary can be made of/),
    ]);
    await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'squares for every input' } });
    await stack.waitFor(id, ['succeeded']);
    const proof = await stack.api('GET', `/v1/runs/${id}/proof`);
    expect(proof.status).toBe(200);
    const res = await fetch(`${stack.apiUrl}/v1/runs/${id}/proof`, {
      headers: { authorization: `Bearer ${stack.token}` },
    });
    const files = await unpackTarGz(Buffer.from(await res.arrayBuffer()));
    const manifest = JSON.parse(files.get('manifest.json')!.toString());
    expect(manifest.checks[1]).toMatchObject({
      name: 'hidden',
      passed: true,
      holdout: { set: 'squares', digest: expectedDigest(), files: 2, tests: { passed: 6, failed: 0 } },
    });
    expect(files.get('logs/check-hidden.log')!.toString()).toContain(
      'hold-out check hidden passed (exit 0): 0 of 6 tests failed',
    );
    for (const [name, content] of files)
      expect([name, content.toString('latin1').includes(CANARY)]).toEqual([name, false]);
    expect([...files.keys()].filter((n) => n.includes('holdout/') || n.startsWith('junit/'))).toEqual([]);
    expect(await everythingShown(id)).not.toContain(CANARY);
    expect(allText(stack.config.home)).not.toContain(CANARY);
  });

  test('the agent commits links at the hold-out paths (holdout/run.js → a host file, holdout/cases → a host directory) → the set is written beside them, not through them: the host file and directory are unchanged', async () => {
    const links = `${HONEST}; rm .gitignore; mkdir -p holdout; ln -s ${hostFile} holdout/run.js; ln -s ${hostDir} holdout/cases`;
    const id = await stack.submit(
      holdoutSpec(links, { scope: { allow: ['src/**', 'notes/**', 'holdout/**', '.gitignore'] }, sandbox: { driver } }),
    );
    const done = await stack.waitFor(id, ['awaiting_approval', 'failed'], 120_000);
    // It passed: the hidden runner ran in the links' place.
    expect(done.checks[1]).toMatchObject({
      name: 'hidden',
      passed: true,
      holdout: { tests: { passed: 6, failed: 0 } },
    });
    expect(readFileSync(hostFile, 'utf8')).toBe('HOST ORIGINAL\n');
    expect(readdirSync(hostDir)).toEqual([]);
    expect(holdoutSandboxes()).toEqual([]);
    if (done.status === 'awaiting_approval')
      await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'test over' } });
  });

  test("the run is cancelled while its hold-out check runs → the check's process is killed and its sandbox removed", async () => {
    const marker = `${Math.floor(Math.random() * 1e6) + 1000}`;
    // Sleeps only where the set was laid over: so the sleep proves the check runs in the hold-out sandbox.
    const slow = [CHECKS[0], { name: 'slow', run: `test -f holdout/slow.js && sleep ${marker}`, holdout: 'slow' }];
    const id = await stack.submit(holdoutSpec(HONEST, { checks: slow, sandbox: { driver } }));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !(pgrep(`sleep ${marker}`) && holdoutSandboxes().length))
      await new Promise((r) => setTimeout(r, 200));
    // The sleep is the base's run of the set (measured first) or the change's: either way a hold-out sandbox's.
    expect({ sleeping: pgrep(`sleep ${marker}`) !== '', sandboxes: holdoutSandboxes() }).toEqual({
      sleeping: true,
      sandboxes: [expect.stringMatching(new RegExp(`^${id}-holdout-(base-)?slow$`))],
    });
    expect((await stack.api('POST', `/v1/runs/${id}/cancel`, {})).status).toBe(202);
    await stack.waitFor(id, ['cancelled']);
    expect(holdoutSandboxes()).toEqual([]);
    expect(pgrep(`sleep ${marker}`)).toBe('');
  });
});

describe('the spec names a hold-out set the server does not hold', () => {
  test.each([
    ['nosuchset', /checks\.1\.holdout.*: there is no hold-out set "nosuchset" on this server/],
    ['../x', /checks\.1\.holdout.*: the name of a hold-out set/],
    ['..', /checks\.1\.holdout.*: the name of a hold-out set/],
    ['escape', /checks\.1\.holdout.*: the hold-out set "escape" is outside the server's hold-out directory/],
  ])('holdout: %s → 400 naming checks.1.holdout; no run starts', async (name, message) => {
    const before = await runCount();
    const res = await stack.api('POST', '/v1/runs', {
      body: holdoutSpec(HONEST, { checks: [CHECKS[0], { ...CHECKS[1], holdout: name }] }),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(message);
    expect(res.body.error.issues[0].field).toBe('checks.1.holdout');
    expect(res.text).not.toContain(outside);
    expect(await runCount()).toBe(before);
  });

  test('a run started straight through Temporal with a missing set → the worker fails that check with the reason, the agent is told; nothing crashes', async () => {
    const input = {
      spec: SpecSchema.parse(
        holdoutSpec(HONEST, { checks: [CHECKS[0], { ...CHECKS[1], holdout: 'nosuchset' }], limits: { iterations: 1 } }),
      ),
      specDigest: 'direct',
      submittedBy: 'temporal',
      settings: { heartbeatTimeoutMs: 5000, workerQueueTimeoutMs: 20_000, maxReprovisions: 0 },
    };
    const id = `direct-${randomBytes(6).toString('hex')}`;
    await stack.client.workflow.start('specRun', { ...runStartOptions(input, stack.config), workflowId: id });
    const failed: RunState = await stack.waitFor(id, ['failed']);
    expect(failed.failure?.stage).toBe('checks');
    expect(failed.failure?.reason).toMatch(
      /^Hold-out check "hidden" could not run: there is no hold-out set "nosuchset" on this server/,
    );
    expect(failed.checks[1]).toMatchObject({ passed: false, exitCode: null, holdout: { set: 'nosuchset' } });
    expect(holdoutSandboxes()).toEqual([]);
  });
});

// Issue 20.2 and 21, "Hold-out checks": the hold-out check gets the visible checks' defences. The base's run of the
// hidden tests (the set laid over the base) says how many must run; a canary (a mutant of one of the hidden tests) is
// planted for a run of its own and must be reported failing, the rest as before; the set's folder is laid in whole.
// Each attack passes the visible check honestly by answering the visible tests' inputs one by one, so only the
// hold-out check stands between it and approval.
describe("hold-out checks get the visible checks' defences", () => {
  /** Right for the visible tests' inputs only: the hidden tests' (7 + 8, 0.5 + 0.25) fail. */
  const SPECIAL_CASED =
    "exports.add = (a, b) => ({ '1,2': 3, '2,2': 4, '10,5': 15, '0,0': 0, '4,0': 4, '-2,-3': -5 })[[a, b]] ?? a - b;";
  const IN_HOLDOUT = "process.argv.some((a) => a.includes('/holdout/'))";
  const mathJs = (...lines: string[]) =>
    `cat > src/math.js <<'NIGHTSHIFT_EOF'\n${[...lines, SPECIAL_CASED].join('\n')}\nNIGHTSHIFT_EOF\n`;
  const ATTACKS = {
    // The control first: the base's runs (visible and hidden) are measured once and cached for the attacks.
    honest: {
      driver: 'bwrap',
      agent: `printf '${JUDGED_APP_FIX['src/math.js'].trimEnd()}\\n' > src/math.js`,
      name: 'bwrap: CONTROL the honest fix passes the visible and the hold-out check and reaches approval with no finding; the hidden canary was reported failing',
    },
    exits: {
      driver: 'bwrap',
      agent: mathJs(`if (${IN_HOLDOUT}) process.exit(0);`),
      name: 'bwrap: code under test exits 0 at load in the hold-out run ("0 of 1 tests failed" for a set of 2) → tests-missing: fewer hidden tests than the base\'s run of the set; never awaits approval',
    },
    lying: {
      driver: 'bwrap',
      agent: mathJs(
        `if (${IN_HOLDOUT}) { process.stdout.write('# tests 2\\n# pass 2\\n# fail 0\\n'); process.exit(0); }`,
      ),
      name: 'bwrap: a lying hold-out runner: code under test detects the hold-out run, prints a passing node:test summary and exits 0 before any hidden test runs → caught (tests-missing, harness-lying); never awaits approval',
    },
    lyingDocker: {
      driver: 'docker',
      agent: mathJs(
        `if (${IN_HOLDOUT}) { process.stdout.write('# tests 2\\n# pass 2\\n# fail 0\\n'); process.exit(0); }`,
      ),
      name: 'docker: a lying hold-out runner (prints a passing summary, exits 0 before any hidden test runs) → caught (tests-missing, harness-lying); never awaits approval',
    },
    patched: {
      driver: 'bwrap',
      agent: mathJs(`if (${IN_HOLDOUT}) require('node:assert').strictEqual = () => {};`),
      name: 'bwrap: node:assert neutralised in the hold-out run only (as many hidden tests "pass" as the base ran) → the hidden canary passes: harness-lying; never awaits approval',
    },
    planted: {
      driver: 'bwrap',
      scope: { allow: ['src/**', 'holdout/**'] },
      agent: `${mathJs()}mkdir -p holdout && cat > holdout/0-first.test.js <<'NIGHTSHIFT_EOF'\nconst fs = require('node:fs');\nfor (const f of fs.readdirSync(__dirname)) if (f.endsWith('.test.js') && f !== '0-first.test.js') fs.writeFileSync(__dirname + '/' + f, "require('node:test').test('fine', () => {});\\n");\nNIGHTSHIFT_EOF\n`,
      name: "bwrap: a file the agent put in the hold-out set's folder, which runs first and rewrites the hidden tests → removed before the check: the hidden tests run as the set has them and fail",
    },
  };
  const runs = new Map<string, Promise<{ state: RunState; logs: string }>>();
  const inTurn = takingTurns(2);

  beforeAll(async () => {
    for (const [rel, content] of Object.entries(JUDGED_APP_HOLDOUT)) {
      mkdirSync(path.dirname(path.join(holdoutDir, 'judged', rel)), { recursive: true });
      writeFileSync(path.join(holdoutDir, 'judged', rel), content);
    }
    const judged = makeRepo(JUDGED_APP);
    for (const { driver, agent, name, ...extra } of Object.values<{
      driver: string;
      agent: string;
      name: string;
      scope?: unknown;
    }>(ATTACKS)) {
      const p = inTurn(async () => {
        const id = await stack.submit(
          spec(judged, agent, {
            title: `hold-out ${name.slice(0, 50)}`,
            task: 'Fix add in src/math.js.',
            checks: [
              { name: 'test', run: 'npm test' },
              { name: 'hidden', run: 'node --test holdout/', holdout: 'judged' },
            ],
            sandbox: { driver },
            limits: { iterations: 1 },
            ...extra,
          }),
        );
        const state = await stack.waitFor(id, ['failed', 'awaiting_approval'], 300_000).catch(async (err: Error) => {
          throw new Error(
            `${err.message}; its log ends:\n${(await stack.api('GET', `/v1/runs/${id}/logs`)).text.slice(-3000)}`,
          );
        });
        const logs = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
        if (state.status === 'awaiting_approval')
          await stack.api('POST', `/v1/runs/${id}/reject`, { body: { comment: 'test over' } });
        return { state, logs };
      });
      p.catch(() => undefined); // reported by its test
      runs.set(name, p);
    }
  }, 60_000);

  const finding = (rule: string, says: string) =>
    expect.objectContaining({ rule, message: expect.stringContaining(says) });
  /** The visible check passed clean; the hold-out check exited 0 but does not count as passed, for these findings. */
  function expectCaught(state: RunState, ...findings: ReviewFinding[]) {
    expect(state.status).toBe('failed');
    expect(state.stages.map((s) => s.stage)).not.toContain('approval');
    expect({ failure: state.failure?.reason, checks: state.checks.map((c) => c.name) }).toMatchObject({
      checks: ['test', 'hidden'],
    });
    const [visible, hidden] = state.checks;
    expect(visible).toMatchObject({ name: 'test', passed: true, integrity: { findings: [] } });
    expect(hidden).toMatchObject({
      name: 'hidden',
      exitCode: 0,
      passed: false,
      integrity: { findings: expect.arrayContaining(findings) },
    });
    expect(state.review?.findings).toEqual(expect.arrayContaining(findings));
  }
  const FEWER = finding(
    'tests-missing',
    'Hold-out check "hidden": 2 of its hidden tests ran on the base\'s code and 1 ran on the change',
  );
  const LYING = finding(
    'harness-lying',
    'Hold-out check "hidden" passed even with a test that must fail planted among its hidden tests',
  );

  test.each([ATTACKS.exits, ATTACKS.lying, ATTACKS.lyingDocker])(
    '$name',
    async ({ name }) => {
      const { state, logs } = await runs.get(name)!;
      expectCaught(state, FEWER, LYING);
      expect(state.checks[1].holdout?.tests).toEqual({ passed: 1, failed: 0 });
      expect(state.checks[1].integrity?.tests).toMatchObject({ base: { ran: 2 }, now: { ran: 1 } });
      expect(logs).toContain("at the base: 2 tests ran; canary reported failing in 1 of the set's files");
      expect(logs).toContain('canary run: the canary PASSED');
    },
    400_000,
  );

  test(
    ATTACKS.patched.name,
    async () => {
      const { state } = await runs.get(ATTACKS.patched.name)!;
      expectCaught(state, LYING);
      // The counts were right: only the canary tells.
      expect(state.checks[1].holdout?.tests).toEqual({ passed: 2, failed: 0 });
      expect(state.checks[1].integrity?.findings.map((f) => f.rule)).toEqual(['harness-lying']);
    },
    400_000,
  );

  test(
    ATTACKS.planted.name,
    async () => {
      const { state, logs } = await runs.get(ATTACKS.planted.name)!;
      expect(state.status).toBe('failed');
      expect(state.checks[1]).toMatchObject({
        name: 'hidden',
        passed: false,
        exitCode: 1,
        holdout: { tests: { passed: 0, failed: 2 } },
      });
      expect(state.failure?.reason).toContain(
        'Hold-out check "hidden" (`node --test holdout/`) failed with exit code 1; 2 of its 2 tests failed',
      );
      expect(logs).toContain(
        "the set's folders are laid in whole: removed what the change had in them: holdout/0-first.test.js",
      );
    },
    400_000,
  );

  test(
    ATTACKS.honest.name,
    async () => {
      const { state, logs } = await runs.get(ATTACKS.honest.name)!;
      expect(state.status).toBe('awaiting_approval');
      expect(state.review).toMatchObject({ verdict: 'approve', findings: [] });
      expect(state.review?.notes).toBeUndefined();
      expect(state.checks[1]).toMatchObject({
        name: 'hidden',
        passed: true,
        holdout: { tests: { passed: 2, failed: 0 } },
        integrity: {
          findings: [],
          tests: { base: { ran: 2 }, now: { ran: 2 } },
          canary: { result: 'reported', files: 1 },
        },
      });
      expect(logs).toContain(
        "canary run: the canary was reported failing, as it must, and the other hidden tests as in the check's own run",
      );
    },
    400_000,
  );
});
