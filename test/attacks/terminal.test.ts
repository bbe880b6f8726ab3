// Issue 11, "terminal-safe CLI": titles, agent output, diffs, reasons and comments come from specs and agents. The
// real CLI binary against a real stack must print none of their control sequences (OSC 52 clipboard writes, screen
// clears, title sets), keep the text around them, keep --json valid, and print them as they are only with --raw.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { TerminalFilter } from '../../cli/terminal';
import { runCli, type CliResult } from '../helpers/cli';
import { makeRepo, startTestStack, tempDir, type TestStack } from '../helpers/stack';
import { spec, VALUE_REPO } from '../helpers/specs';

/** ESC, every other C0 control but \n and \t (so \r, \b, BEL), DEL, and C1 (8-bit CSI U+009B, OSC U+009D…). */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

const OSC52 = '\x1b]52;c;ZXZpbA==\x07';
const TITLE = `Evil title start ${OSC52} middle \u009b2J\u009d0;c1-title\u009c end`;
/** What the agent prints and writes into src/evil.txt (so the diff holds it too); printf escapes, for sh. */
const EVIL_PRINTF = String.raw`visible-before\033[2J\033]0;pwned\007visible-after\r\b\302\233K tail\n`;
const EVIL = 'visible-before\x1b[2J\x1b]0;pwned\x07visible-after\r\b\u009bK tail\n';

let stack: TestStack;
let repo: string;
let runId: string;
/** `submit --wait` of the evil run, as the user saw it. */
let submitted: CliResult;

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, {
    NIGHTSHIFT_HOME: stack.config.home,
    NIGHTSHIFT_URL: stack.apiUrl,
    NIGHTSHIFT_TOKEN: stack.token,
  });
}

function specFile(content: object | string, name = 'evil.json'): string {
  const file = path.join(tempDir('specs'), name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** The CLI's output holds no control byte (stdout and stderr), and it did say something. */
function expectClean(res: CliResult): void {
  expect({ stdout: CONTROL.exec(res.stdout)?.[0], stderr: CONTROL.exec(res.stderr)?.[0] }).toEqual({
    stdout: undefined,
    stderr: undefined,
  });
  expect(res.stdout + res.stderr).not.toBe('');
}

beforeAll(async () => {
  stack = await startTestStack();
  repo = makeRepo(VALUE_REPO);
  const agent = `printf '${EVIL_PRINTF}'; printf '${EVIL_PRINTF}' > src/evil.txt; echo 2 > src/value.txt`;
  submitted = await cli(['submit', specFile(spec(repo, agent, { title: TITLE })), '--wait']);
  runId = /^(ns-[0-9a-f]+) submitted$/m.exec(submitted.stdout)![1];
});
afterAll(async () => {
  await stack?.stop();
});

test('submit --wait prints the run following to awaiting_approval, with no control bytes', () => {
  expect(submitted.code).toBe(0);
  expectClean(submitted);
  expect(submitted.stdout).toMatch(/^ {2}awaiting_approval · approval/m);
});

test('status: the title without its OSC 52 clipboard write or 8-bit CSI/OSC; the words around them stay', async () => {
  const res = await cli(['status', runId]);
  expectClean(res);
  expect(res.stdout).toContain(`${runId}  Evil title start  middle  end`);
  expect(res.stdout).not.toContain('ZXZpbA==');
  expect(res.stdout).not.toContain('c1-title');
});

test("logs: the agent's screen clear and title set are gone, its visible text stays", async () => {
  const res = await cli(['logs', runId]);
  expectClean(res);
  // The agent's line; the log's header quotes the command that printed it (as source text: no control bytes).
  expect(res.stdout).toMatch(/^visible-beforevisible-after tail$/m);
});

test('diff: the file the agent wrote shows its text, not its sequences', async () => {
  const res = await cli(['diff', runId]);
  expectClean(res);
  expect(res.stdout).toContain('+++ b/src/evil.txt');
  expect(res.stdout).toMatch(/^\+visible-beforevisible-after tail$/m);
});

test('runs: the title in the table is clean', async () => {
  const res = await cli(['runs', '--limit', '100']);
  expectClean(res);
  expect(res.stdout).toMatch(new RegExp(`^${runId} .*Evil title start  middle  end$`, 'm'));
});

test('--raw prints the bytes as the server sent them (status, logs, diff)', async () => {
  expect((await cli(['--raw', 'status', runId])).stdout).toContain(TITLE);
  expect((await cli(['logs', runId, '--raw'])).stdout).toContain(EVIL);
  expect((await cli(['diff', runId, '--raw'])).stdout).toContain(`+${EVIL}`);
});

test('--json stays valid JSON and keeps the data, every control escaped (status, runs, submit --wait --json)', async () => {
  const status = await cli(['status', runId, '--json']);
  expectClean(status);
  expect(JSON.parse(status.stdout).title).toBe(TITLE);
  const runs = await cli(['runs', '--json', '--limit', '100']);
  expectClean(runs);
  expect(JSON.parse(runs.stdout).runs.find((r: { id: string }) => r.id === runId).title).toBe(TITLE);
  const again = await cli([
    'submit',
    specFile(spec(repo, 'echo 2 > src/value.txt', { title: TITLE, approval: { required: false } })),
    '--wait',
    '--json',
  ]);
  expectClean(again);
  expect(JSON.parse(again.stdout)).toMatchObject({ title: TITLE, status: 'succeeded' });
});

test("an error echoing the spec's own text (an unknown field named with OSC 52) reaches stderr clean, still naming it", async () => {
  const res = await cli(['submit', specFile({ ...spec(repo, 'true'), [`x${OSC52}y`]: 1 })]);
  expect(res.code).toBe(2);
  expectClean(res);
  expect(res.stderr).toMatch(/unknown field.*xy/);
});

test("a failure reason quoting the spec's check command (raw OSC 52 in it): submit --wait and status print it clean", async () => {
  const failing = spec(repo, 'echo 3 > src/value.txt', {
    title: 'Fails',
    checks: [{ name: 'evil', run: `echo 'out${OSC52}put'; exit 1` }],
    limits: { iterations: 1 },
  });
  const res = await cli(['submit', specFile(failing), '--wait']);
  expect(res.code).toBe(1);
  expectClean(res);
  expect(res.stdout).toMatch(/^ {2}failed · checks/m);
  expect(res.stdout).toMatch(
    /^ {2}checks: Check "evil" \(`echo 'output'; exit 1`\) failed with exit code 1\. Its log ends with:$/m,
  );
  const id = /^(ns-[0-9a-f]+) submitted$/m.exec(res.stdout)![1];
  const status = await cli(['status', id]);
  expectClean(status);
  expect(status.stdout).toMatch(/^failure {4}checks: Check "evil" \(`echo 'output'; exit 1`\)/m);
  expect(status.stdout).toMatch(/FAIL {2}evil {2}\(echo 'output'; exit 1, exit 1/);
  expect((await cli(['logs', id])).stdout).toMatch(/^output$/m);
});

test("a decision's comment and logs -f to the end: clean", async () => {
  expect(
    (await stack.api('POST', `/v1/runs/${runId}/reject`, { body: { comment: `no\x1b[2J\x1b]52;c;QUFB\x07 thanks\r` } }))
      .status,
  ).toBe(202);
  await stack.waitFor(runId, ['rejected']);
  const status = await cli(['status', runId]);
  expectClean(status);
  expect(status.stdout).toMatch(/^decision {3}reject by admin at .*: no thanks$/m);
  const followed = await cli(['logs', runId, '-f']);
  expectClean(followed);
  expect(followed.stdout).toMatch(/^visible-beforevisible-after tail$/m);
});

test('logs -f while the agent writes a title sequence in two halves, seconds apart: no half slips through', async () => {
  // The second half's payload is ZZZZ, written in octal so the log's header (which quotes the command) never holds it.
  const agent = String.raw`printf 'split-before\033]0;title-start '; sleep 3; printf '\132\132\132\132\007split-after\n'; echo 2 > src/value.txt`;
  const id = await stack.submit(spec(repo, agent, { approval: { required: false } }));
  const following = cli(['logs', id, '-f']);
  // The server really serves the halves apart: a log read between them ends inside the sequence.
  let halfSeen = false;
  for (let i = 0; i < 200 && !halfSeen; i++) {
    const log = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
    if (log.includes('ZZZZ')) break;
    halfSeen = log.includes('split-before\x1b]0;title-start');
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(halfSeen).toBe(true);
  const followed = await following;
  expectClean(followed);
  expect(followed.stdout).toMatch(/^split-beforesplit-after$/m);
  expect(followed.stdout).not.toContain('ZZZZ');
});

test('the filter gives the same text however a stream splits the sequences (every cut point, also mid-ESC)', () => {
  const text = `${TITLE}\n${EVIL}\x1bP1;2|dcs\x1b\\ok \x1b_apc\x1b\\ \x1bc\x1b(B\x1b[?1049h done\t✓`;
  const whole = new TerminalFilter().write(text);
  expect(whole).toBe('Evil title start  middle  end\nvisible-beforevisible-after tail\nok   done\t✓');
  for (let cut = 0; cut <= text.length; cut++) {
    const filter = new TerminalFilter();
    expect([cut, filter.write(text.slice(0, cut)) + filter.write(text.slice(cut))]).toEqual([cut, whole]);
  }
});
