import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { prepareRun, SpecRejected } from '../../admission/prepareRun';
import { loadConfig, type Config } from '../../config';
import { imageRef } from '../../config/images';
import { tallyFromJunit, tallyFromOutput, type TallyFormat } from '../../judge/tally';
import { parseSpec } from '../../spec/parse';
import type { Check } from '../../spec/schema';
import { makeRepoIn } from '../../testbed/makeRepo';
import { tempDir } from '../helpers/repos';

// The ecosystem pages (docs/ecosystems/*.md) promise a working spec: every ```yaml block goes through the server's
// admission with what the page's admin lines offer (NIGHTSHIFT_TOOLCHAINS, NIGHTSHIFT_DOCKER_IMAGES, `nightshift
// image build`), and every check held against the base must be a command whose output judge/tally.ts reads counts
// from: a real output of that runner (recorded on 2026-12-06 from the testbed projects; node's run here) is read back.

const DOCS = path.resolve(__dirname, '..', '..', '..', 'docs', 'ecosystems');
const PAGES = ['node.md', 'go.md', 'python.md', 'rust.md'];

const fenced = (text: string, lang: string) =>
  [...text.matchAll(new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => m[1]);

/** What a page's admin lines offer: toolchains by name, the images allowed, each image built and its toolchains. */
interface Offer {
  toolchains: Record<string, string>;
  images: string;
  built: Map<string, string[]>;
}

function offerOf(text: string): Offer {
  const sh = fenced(text, 'sh').join('\n');
  const value = (name: string) => new RegExp(`^${name}=(\\S+)`, 'm').exec(sh)?.[1];
  const toolchains = Object.fromEntries(
    (value('NIGHTSHIFT_TOOLCHAINS') ?? '')
      .split(',')
      .filter(Boolean)
      .map((entry) => entry.split('=') as [string, string]),
  );
  const built = new Map<string, string[]>();
  for (const m of sh.matchAll(/^nightshift image build (.*)$/gm)) {
    const tag = /--tag (\S+)/.exec(m[1])?.[1];
    if (tag)
      built.set(
        imageRef(tag),
        [...m[1].matchAll(/--toolchain ([a-z0-9_-]+)=/g)].map((t) => t[1]),
      );
  }
  return { toolchains, images: value('NIGHTSHIFT_DOCKER_IMAGES') ?? '', built };
}

/**
 * The server's config as the page's admin sets it. Admission reads the toolchains' names only (a worker binds their
 * directories), so the page's directories are taken as written: the unit tier runs where no Go or cargo is installed.
 */
function configFor(offer: Offer, reposDir: string): Config {
  const config = loadConfig({
    NIGHTSHIFT_HOME: tempDir('eco-home'),
    NIGHTSHIFT_REPOS_DIR: reposDir,
    ...(offer.images ? { NIGHTSHIFT_DOCKER_IMAGES: offer.images } : {}),
  });
  return { ...config, toolchains: offer.toolchains };
}

/** Admission's answer: the run's input, or the one-line reason it refused the spec. */
function admit(text: string, config: Config): { spec: ReturnType<typeof parseSpec> } | { refused: string } {
  try {
    return { spec: prepareRun(text, 'application/yaml', 'admin', config).spec };
  } catch (err) {
    if (err instanceof SpecRejected) return { refused: err.message };
    throw err;
  }
}

/** node --test, run here for real on two tests, one failing (its TAP, as in a sandbox: not a terminal). */
function nodeTestOutput(): string {
  const dir = tempDir('eco-node');
  mkdirSync(path.join(dir, 'test'));
  writeFileSync(path.join(dir, 'package.json'), '{"name":"mathx","version":"1.0.0"}\n');
  writeFileSync(
    path.join(dir, 'test', 'clamp.test.js'),
    "const test = require('node:test');\nconst assert = require('node:assert');\n" +
      'const clamp = (v, lo, hi) => (v < lo ? lo : v > hi ? lo : v);\n' +
      "test('below', () => assert.strictEqual(clamp(-5, 0, 10), 0));\n" +
      "test('above', () => assert.strictEqual(clamp(15, 0, 10), 10));\n",
  );
  const r = spawnSync(process.execPath, ['--test'], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
  return `${r.stdout}${r.stderr}`;
}

const GO_JSON = [
  '{"Time":"2026-12-06T18:08:38.894026602Z","Action":"start","Package":"example.com/mathx"}',
  '{"Time":"2026-12-06T18:08:38.927816897Z","Action":"run","Package":"example.com/mathx","Test":"TestClampBelow"}',
  '{"Time":"2026-12-06T18:08:38.93388984Z","Action":"output","Package":"example.com/mathx","Test":"TestClampBelow","Output":"--- PASS: TestClampBelow (0.00s)\\n"}',
  '{"Time":"2026-12-06T18:08:38.93401063Z","Action":"pass","Package":"example.com/mathx","Test":"TestClampBelow","Elapsed":0}',
  '{"Time":"2026-12-06T18:08:38.934073119Z","Action":"output","Package":"example.com/mathx","Test":"TestClampAbove","Output":"    mathx_test.go:17: Clamp(15, 0, 10) = 0, want 10\\n"}',
  '{"Time":"2026-12-06T18:08:38.934091565Z","Action":"fail","Package":"example.com/mathx","Test":"TestClampAbove","Elapsed":0}',
  '{"Time":"2026-12-06T18:08:38.934209059Z","Action":"fail","Package":"example.com/mathx","Test":"TestClampAll","Elapsed":0}',
  '{"Time":"2026-12-06T18:08:38.934483293Z","Action":"fail","Package":"example.com/mathx","Elapsed":0.04}',
].join('\n');

const PYTEST_V = [
  'collecting ... collected 3 items',
  '',
  'tests/test_clamp.py::test_clamp_below PASSED                             [ 33%]',
  'tests/test_clamp.py::test_clamp_above FAILED                             [ 66%]',
  'tests/test_clamp.py::test_clamp_all FAILED                               [100%]',
  '',
  'FAILED tests/test_clamp.py::test_clamp_above - assert 0 == 10',
  'FAILED tests/test_clamp.py::test_clamp_all - assert [0, 2, 0] == [0, 2, 3]',
  '========================= 2 failed, 1 passed in 1.08s ==========================',
].join('\n');

const CARGO = [
  '     Running unittests src/lib.rs (target/debug/deps/mathx-b0eed76443cfd70e)',
  '',
  'running 1 test',
  'test tests::below ... ok',
  '',
  'test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s',
  '',
  '     Running tests/clamp.rs (target/debug/deps/clamp-393d126d0bd66d04)',
  '',
  'running 2 tests',
  'test clamp_below ... ok',
  'test clamp_above ... FAILED',
  '',
  'test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s',
  '',
  '   Doc-tests mathx',
  '',
  'running 0 tests',
  '',
  'test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s',
].join('\n');

const JEST = [
  'Test Suites: 1 failed, 1 total',
  'Tests:       1 failed, 1 skipped, 1 passed, 3 total',
  'Snapshots:   0 total',
  'Time:        1.168 s',
  'Ran all test suites.',
].join('\n');

/** pytest --junitxml's report on the testbed project (the failures' text cut). */
const PYTEST_JUNIT =
  '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="2" skipped="0" tests="3">' +
  '<testcase classname="tests.test_clamp" name="test_clamp_below" time="0.005" />' +
  '<testcase classname="tests.test_clamp" name="test_clamp_above" time="0.001"><failure message="assert 0 == 10">…</failure></testcase>' +
  '<testcase classname="tests.test_clamp" name="test_clamp_all" time="0.001"><failure message="…">…</failure></testcase>' +
  '</testsuite></testsuites>';

/** The check commands the pages may use, each with what its runner really printed and what the judge reads of it. */
const RUNNERS: { form: RegExp; output: () => string; format: TallyFormat | undefined; byName: boolean }[] = [
  { form: /\bgo test\b[^&|;]*\s-json\b/, output: () => GO_JSON, format: 'go test -json', byName: true },
  { form: /\bpytest\b[^&|;]*\s-v\b/, output: () => PYTEST_V, format: 'pytest -v', byName: true },
  { form: /\bcargo test\b[^&|;]*\s--no-fail-fast\b/, output: () => CARGO, format: 'cargo test', byName: true },
  { form: /\bnode --test\b/, output: nodeTestOutput, format: undefined, byName: false },
  { form: /\bjest\b/, output: () => JEST, format: undefined, byName: false },
];
const runnerOf = (command: string) => RUNNERS.find((r) => r.form.test(command));

/** Where a check's command writes the JUnit report it names. */
const writesReport = (check: Check) =>
  [`--junitxml=${check.junit}`, `--test-reporter-destination=${check.junit}`].some((w) => check.run.includes(w));

const pages = PAGES.map((file) => ({ file, text: readFileSync(path.join(DOCS, file), 'utf8') }));

test('every ecosystem page is listed in the index and has a spec for each driver', () => {
  const index = readFileSync(path.join(DOCS, 'README.md'), 'utf8');
  expect(readdirSync(DOCS).sort()).toEqual([...PAGES, 'README.md'].sort());
  for (const { file, text } of pages) {
    expect(index).toContain(`](${file})`);
    const drivers = fenced(text, 'yaml').map((y) => parseSpec(y, 'application/yaml').sandbox.driver);
    expect({ file, bwrap: drivers.includes('bwrap'), docker: drivers.includes('docker') }).toEqual({
      file,
      bwrap: true,
      docker: true,
    });
  }
});

describe.each(pages)('$file', ({ file, text }) => {
  const offer = offerOf(text);
  const reposDir = tempDir('eco-repos');
  const specs = fenced(text, 'yaml');
  // The repos the specs name, as the server's repos dir holds them (read by line: a spec admission refuses must fail
  // its own test, not the file's).
  for (const repo of new Set(specs.flatMap((y) => /^repo: ([\w.-]+)$/m.exec(y)?.[1] ?? [])))
    renameSync(makeRepoIn(reposDir, { 'README.md': `${repo}\n` }), path.join(reposDir, repo));
  const config = configFor(offer, reposDir);

  test.each(specs.map((yaml, i) => [i + 1, yaml]))('spec %i is admitted with what the page offers', (_, yaml) => {
    const admitted = admit(yaml, config);
    expect(admitted).not.toHaveProperty('refused');
    const { sandbox } = (admitted as { spec: ReturnType<typeof parseSpec> }).spec;
    // Each toolchain it asks for is offered, and on docker is in the image the page builds for it.
    for (const name of sandbox.toolchains) expect(Object.keys(offer.toolchains)).toContain(name);
    if (sandbox.driver === 'docker' && sandbox.image) {
      expect([...offer.built.keys()]).toContain(imageRef(sandbox.image));
      expect(offer.built.get(imageRef(sandbox.image))).toEqual(expect.arrayContaining(sandbox.toolchains));
    }
    // The page's admin lines are what make it pass: a server offering nothing refuses a spec that asks for anything.
    if (sandbox.toolchains.length || sandbox.image) {
      const bare = configFor({ toolchains: {}, images: '', built: new Map() }, reposDir);
      expect(admit(yaml, bare)).toEqual({ refused: expect.stringMatching(/sandbox\.(toolchains\.0|image)/) });
    }
  });

  test("each check held against the base is one whose counts the judge reads, from its runner's real output", () => {
    const checks = specs.flatMap((y) => parseSpec(y, 'application/yaml').checks);
    const judged = checks.filter((c) => c.baseline !== false && c.holdout === undefined);
    expect(judged.length).toBeGreaterThan(0);
    for (const check of judged) {
      if (check.junit) {
        expect({ file, run: check.run, writesItsReport: writesReport(check) }).toEqual({
          file,
          run: check.run,
          writesItsReport: true,
        });
        continue;
      }
      const runner = runnerOf(check.run);
      expect({ file, run: check.run, read: runner !== undefined }).toEqual({ file, run: check.run, read: true });
      const tally = tallyFromOutput(runner!.output());
      expect(tally).toBeDefined();
      expect(tally!.passed + tally!.failed).toBeGreaterThan(0);
      expect(tally!.format).toBe(runner!.format);
      expect(tally!.cases !== undefined).toBe(runner!.byName);
    }
  }, 60_000);
});

test("the runners' recorded outputs read as the pages say; plain go test, and cargo test without --no-fail-fast, do not pass", () => {
  expect(tallyFromOutput(GO_JSON)).toMatchObject({ passed: 1, failed: 2, skipped: 0, format: 'go test -json' });
  expect(tallyFromOutput(GO_JSON)?.cases?.[0]).toEqual({
    name: 'example.com/mathx › TestClampBelow',
    status: 'passed',
  });
  expect(tallyFromOutput(PYTEST_V)?.cases?.[1]).toEqual({
    name: 'tests/test_clamp.py::test_clamp_above',
    status: 'failed',
  });
  expect(tallyFromOutput(CARGO)).toMatchObject({ passed: 2, failed: 1, skipped: 0, format: 'cargo test' });
  expect(tallyFromOutput(JEST)).toEqual({ passed: 1, failed: 1, skipped: 1 });
  expect(tallyFromOutput(nodeTestOutput())).toEqual({ passed: 1, failed: 1, skipped: 0 });
  expect(tallyFromJunit(PYTEST_JUNIT)).toMatchObject({ passed: 1, failed: 2, format: 'junit' });
  expect(tallyFromJunit(PYTEST_JUNIT)?.cases?.[1].name).toBe('tests.test_clamp › test_clamp_above');
  // Commands the pages must not offer as verified.
  expect(runnerOf('go test ./...')).toBeUndefined();
  expect(runnerOf('go vet ./... && go test ./...')).toBeUndefined();
  expect(runnerOf('cargo test --offline')).toBeUndefined();
  expect(tallyFromOutput('ok  \texample.com/mathx\t0.023s\n')).toBeUndefined();
}, 60_000);
