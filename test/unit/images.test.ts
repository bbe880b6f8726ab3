import { mkdirSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { prepareRun, SpecRejected } from '../../admission/prepareRun';
import { containerfile, parseToolchain } from '../../cli/image';
import { CliError } from '../../cli/client';
import { loadConfig } from '../../config';
import { allowedImages, imageRef } from '../../config/images';
import { policyFor } from '../../sandbox/policy';
import { parseSpec } from '../../spec/parse';
import { makeRepo, tempDir } from '../helpers/repos';

// Images per spec (docs/images.md): the admin's allowlist, the spec's field, admission's refusals, and the
// Containerfile `nightshift image build` writes. The engine's side is test/images.test.ts.

test('image names compare with their tag: no tag is :latest, a tag or a digest stays as written', () => {
  expect(imageRef('nightshift-go')).toBe('nightshift-go:latest');
  expect(imageRef(' registry.local:5000/team/go ')).toBe('registry.local:5000/team/go:latest');
  expect(imageRef('nightshift-go:1.22')).toBe('nightshift-go:1.22');
  expect(imageRef('go@sha256:abc')).toBe('go@sha256:abc');
  expect(allowedImages('nightshift-sandbox', 'nightshift-go, py:3 ,,nightshift-sandbox:latest')).toEqual([
    'nightshift-sandbox:latest',
    'nightshift-go:latest',
    'py:3',
  ]);
  expect(loadConfig({ NIGHTSHIFT_HOME: tempDir('cfg') }).dockerImages).toEqual(['nightshift-sandbox:latest']);
});

describe('admission', () => {
  const home = tempDir('images-home');
  const repo = makeRepo({ 'README.md': 'x\n' });
  const config = loadConfig({
    NIGHTSHIFT_HOME: home,
    NIGHTSHIFT_REPOS_DIR: path.dirname(repo),
    NIGHTSHIFT_DOCKER_IMAGES: 'nightshift-go',
  });
  const submit = (sandbox: object) =>
    prepareRun(
      JSON.stringify({ title: 't', task: 't', repo, agent: { kind: 'command', command: ['true'] }, sandbox }),
      'application/json',
      'admin',
      config,
    );
  const rejection = (sandbox: object) => {
    try {
      submit(sandbox);
    } catch (err) {
      if (err instanceof SpecRejected) return err;
      throw err;
    }
    throw new Error('expected a SpecRejected');
  };

  test('an image the admin allows is taken, by its name with or without the tag', () => {
    expect(submit({ driver: 'docker', image: 'nightshift-go' }).spec.sandbox.image).toBe('nightshift-go');
    expect(submit({ driver: 'docker', image: 'nightshift-go:latest' }).spec.sandbox.image).toBe('nightshift-go:latest');
    expect(submit({ driver: 'docker', image: 'nightshift-sandbox' }).spec.sandbox.image).toBe('nightshift-sandbox');
    expect(submit({ driver: 'docker' }).spec.sandbox.image).toBeUndefined();
  });

  test('an image off the list is refused naming sandbox.image and listing the allowed ones', () => {
    const err = rejection({ driver: 'docker', image: 'debian:bookworm' });
    expect(err.issues).toEqual([
      {
        field: 'sandbox.image',
        message:
          '"debian:bookworm" is not an image this server allows (NIGHTSHIFT_DOCKER_IMAGES); allowed: nightshift-sandbox:latest, nightshift-go:latest',
      },
    ]);
    // Another tag of an allowed name is another image.
    expect(rejection({ driver: 'docker', image: 'nightshift-go:old' }).issues[0].field).toBe('sandbox.image');
  });

  test('on bwrap (the default driver) an image is refused: it runs the host system', () => {
    const err = rejection({ image: 'nightshift-go' });
    expect(err.issues[0].field).toBe('sandbox.image');
    expect(err.message).toMatch(/only the docker driver starts from an image; this sandbox's driver is bwrap/);
  });
});

test('the spec field: a name, on the policy the driver opens with; unset changes nothing', () => {
  const base = '---\ntitle: t\nrepo: ./r\nagent: { kind: command, command: [x] }\n';
  const spec = parseSpec(`${base}sandbox: { driver: docker, image: "nightshift-go:1.22" }\n---\ntask\n`);
  expect(policyFor(spec.sandbox).image).toBe('nightshift-go:1.22');
  expect('image' in policyFor(parseSpec(`${base}---\ntask\n`).sandbox)).toBe(false);
  expect(() => parseSpec(`${base}sandbox: { driver: docker, image: "go; rm -rf /" }\n---\ntask\n`)).toThrow(
    /sandbox\.image.*an image name/,
  );
});

test('the Containerfile: FROM the base by id, each toolchain copied, its bin first on PATH, labelled', () => {
  const text = containerfile({ name: 'nightshift-sandbox:latest', id: 'sha256:abc', path: '/usr/bin:/bin' }, [
    { name: 'go', dir: '/usr/local/go', version: 'go version go1.22.5 linux/amd64' },
  ]);
  expect(text.split('\n')).toEqual([
    'FROM abc',
    'COPY toolchains/go /opt/toolchains/go',
    'ENV PATH="/opt/toolchains/go/bin:/usr/bin:/bin"',
    'LABEL nightshift.base="nightshift-sandbox:latest@sha256:abc"',
    'LABEL nightshift.toolchains="go"',
    'LABEL nightshift.toolchain.go="/usr/local/go (go version go1.22.5 linux/amd64)"',
    '',
  ]);
});

test('--toolchain takes NAME=/absolute/dir with a bin/, and says what is wrong otherwise', () => {
  const dir = tempDir('toolchain');
  mkdirSync(`${dir}/bin`);
  expect(parseToolchain(`tool=${dir}`)).toMatchObject({ name: 'tool', dir: realpathSync(dir) });
  const fails = (arg: string) => {
    try {
      parseToolchain(arg);
    } catch (err) {
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(2);
      return (err as Error).message;
    }
    throw new Error('expected a CliError');
  };
  expect(fails('go')).toMatch(/expected NAME=\/absolute\/dir/);
  expect(fails('go=relative/go')).toMatch(/expected NAME=\/absolute\/dir/);
  expect(fails(`go=${dir}/nope`)).toMatch(/is not a directory/);
  expect(fails(`go=${dir}/bin`)).toMatch(/has no bin\/ directory/);
  // Debian packages: names only, so nothing else reaches the build's shell.
  expect(parseToolchain('python=debian:python3-pytest,python3-venv')).toEqual({
    name: 'python',
    packages: ['python3-pytest', 'python3-venv'],
  });
  expect(fails('python=debian:python3;curl evil')).toBe(
    '--toolchain python=debian:python3;curl evil: "python3;curl evil" is not a Debian package name',
  );
  expect(fails('python=debian:')).toMatch(/"" is not a Debian package name/);
});

test('Debian packages: installed as root by the base image apt, the base user restored, no bin added to PATH', () => {
  const text = containerfile(
    { name: 'nightshift-sandbox:latest', id: 'sha256:abc', path: '/usr/bin:/bin', user: '1000:1000' },
    [
      { name: 'python', packages: ['python3-pytest'] },
      { name: 'go', dir: '/usr/local/go' },
    ],
  );
  expect(text.split('\n').slice(0, 6)).toEqual([
    'FROM abc',
    'USER root',
    'RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pytest && rm -rf /var/lib/apt/lists/*',
    'USER 1000:1000',
    'COPY toolchains/go /opt/toolchains/go',
    'ENV PATH="/opt/toolchains/go/bin:/usr/bin:/bin"',
  ]);
  expect(text).toContain('LABEL nightshift.toolchains="python,go"\n');
  expect(text).toContain('LABEL nightshift.toolchain.python="debian: python3-pytest"\n');
});
