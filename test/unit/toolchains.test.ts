// Toolchains (docs/reference.md, "Toolchains"): what the admin may offer, what a spec may ask for, the sandbox's PATH,
// and a command the sandbox lacks said in words. test/toolchains.test.ts runs them in real bwrap sandboxes.
import { mkdirSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../config';
import { parseSpec, SpecError } from '../../spec/parse';
import { SANDBOX_PATH } from '../../sandbox/layout';
import { notFoundInSandbox, toolchainPath } from '../../sandbox/toolchains';
import { checkProblem } from '../../workflows/specRun/feedback';
import { checksOutcome } from '../../workflows/specRun/outcomes';
import { tempDir } from '../helpers/repos';

const home = tempDir('tc-home');
const load = (toolchains: string) => () =>
  loadConfig({ NIGHTSHIFT_HOME: home, HOME: '/root', NIGHTSHIFT_TOOLCHAINS: toolchains });

test('the admin offers a toolchain by name and directory; the real path is what a sandbox gets', () => {
  expect(load('')().toolchains).toEqual({});
  expect(load(' go=/usr/local/go , python=/usr ')().toolchains).toEqual({ go: '/usr/local/go', python: '/usr' });
});

test.each([
  ['go', /"go" is not name=\/directory/],
  ['Go=/usr/local/go', /"Go=\/usr\/local\/go" is not name=\/directory/],
  ['go=/usr/local/go,go=/usr', /names the toolchain go twice/],
  ['go=usr/local/go', /go=usr\/local\/go is not an absolute path/],
  ['go=/nowhere/go', /go=\/nowhere\/go does not exist/],
  ['go=/usr/local/go/bin/go', /is not a directory/],
  ['go=/opt/../usr/share/doc', /has no bin\/ directory/],
])('NIGHTSHIFT_TOOLCHAINS=%s is refused at load: %s', (value, message) => {
  expect(load(value)).toThrow(message);
});

test.each([
  ['ssh=/root/.ssh', 'NIGHTSHIFT_TOOLCHAINS: ssh=/root/.ssh is inside /root ('],
  ['etc=/etc', 'NIGHTSHIFT_TOOLCHAINS: etc=/etc is inside /etc'],
  ['all=/', 'NIGHTSHIFT_TOOLCHAINS: all=/ holds /'],
  ['run=/run', "NIGHTSHIFT_TOOLCHAINS: run=/run is inside /run (the host's sockets)"],
  ['sandbox=/workspace/tools', "is inside /workspace (the sandbox's workspace)"],
])('a toolchain at a secret or the host live state is refused at load: %s', (value, message) => {
  expect(load(value)).toThrow(message);
});

test("a toolchain in Nightshift's own data, or a link to a secret, is refused at load", () => {
  const inHome = path.join(home, 'tools');
  mkdirSync(path.join(inHome, 'bin'), { recursive: true });
  expect(load(`x=${inHome}`)).toThrow(`x=${inHome} is inside ${home} (Nightshift's own data)`);
  // Nothing about the link itself looks wrong: where it leads does.
  const links = tempDir('tc-links');
  // /root itself: a link's target must exist (/root/.ssh may not, on a fresh machine).
  symlinkSync('/root', path.join(links, 'tc'));
  expect(load(`x=${links}/tc`)).toThrow(`NIGHTSHIFT_TOOLCHAINS: x=${links}/tc leads to /root, which is inside /root (`);
  symlinkSync(home, path.join(links, 'data'));
  expect(load(`x=${links}/data`)).toThrow(`leads to ${home}, which is inside`);
});

test('a spec asks for toolchains by name, none by default', () => {
  const base = { title: 't', task: 't', repo: 'r', agent: { kind: 'command', command: ['true'] } };
  expect(parseSpec(JSON.stringify(base), 'application/json').sandbox.toolchains).toEqual([]);
  expect(
    parseSpec(JSON.stringify({ ...base, sandbox: { toolchains: ['go', 'python'] } }), 'application/json').sandbox
      .toolchains,
  ).toEqual(['go', 'python']);
  for (const bad of [['../go'], ['go', 'go'], ['Go'], 'go']) {
    const error = (() => {
      try {
        parseSpec(JSON.stringify({ ...base, sandbox: { toolchains: bad } }), 'application/json');
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(SpecError);
    expect((error as SpecError).issues[0].field).toMatch(/^sandbox\.toolchains/);
  }
});

test("the sandbox's PATH: each toolchain's bin first, in the spec's order, then the base PATH without repeats", () => {
  const offered = { go: '/usr/local/go', python: '/usr' };
  expect(toolchainPath([], offered)).toBe(SANDBOX_PATH);
  expect(toolchainPath(['go'], offered)).toBe(`/usr/local/go/bin:${SANDBOX_PATH}`);
  expect(toolchainPath(['python', 'go'], offered)).toBe(
    '/usr/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin',
  );
});

test('a command its shell did not find is said with the toolchains offered; any other failure is not', () => {
  const line = 'go: not found in the sandbox; toolchains offered: go, python (sandbox.toolchains)';
  expect(notFoundInSandbox(127, 'sh: 1: go: not found\n', ['go', 'python'])).toBe(line);
  expect(notFoundInSandbox(127, 'x\nbash: line 1: go: command not found\n[nightshift: …]\n', ['go', 'python'])).toBe(
    line,
  );
  expect(notFoundInSandbox(127, 'sh: 1: cargo: not found', [])).toBe(
    'cargo: not found in the sandbox; toolchains offered: none (sandbox.toolchains)',
  );
  // Its own exit code, or words that only look like it, are not.
  expect(notFoundInSandbox(1, 'sh: 1: go: not found\n', ['go'])).toBeUndefined();
  expect(notFoundInSandbox(127, 'file not found: x.txt\n', ['go'])).toBeUndefined();
  expect(notFoundInSandbox(127, 'exit 127 on purpose\n', ['go'])).toBeUndefined();
});

test("a check whose command was not found says so in the agent's feedback and the stage's summary", () => {
  const notFound = 'go: not found in the sandbox; toolchains offered: go (sandbox.toolchains)';
  const check = {
    name: 'vet',
    command: 'go vet ./...',
    exitCode: 127,
    timedOut: false,
    durationMs: 5,
    logId: 'l',
    logTail: 'sh: 1: go: not found',
    passed: false,
    notFound,
  };
  expect(checkProblem(check)).toBe(
    `Check "vet" (\`go vet ./...\`) failed with exit code 127 (${notFound}). Its log ends with:\nsh: 1: go: not found`,
  );
  expect(checksOutcome([check])).toEqual([false, `vet failed (${notFound})`]);
});
