import type Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { runStartOptions } from '../api/submit';
import { imageRef } from '../config/images';
import { SpecSchema } from '../spec/schema';
import { dockerClient } from '../sandbox/docker';
import { openArtifactStore } from '../store/openArtifacts';
import { unpackTarGz } from '../proof/tar';
import { runCli } from './helpers/cli';
import { SANDBOX_IMAGE } from './helpers/sandboxes';
import { toolchainImage } from './helpers/images';
import { makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';

// Images per spec on the docker driver (docs/images.md): `nightshift image build` makes one from the sandbox image
// without pulling anything, with a host directory copied in and Debian's packages installed; a spec asks for one with
// `sandbox.image`, or by `sandbox.toolchains` alone, and its check runs plain `go`; the image's digest is the run's
// provenance. An image off the admin's list is refused at submit, and an image that lacks a piece of the contract is
// named at worker start and refused at provision. The runs use the tests' image with the host's Go and pytest
// (test/helpers/images.ts, built by the same command and kept); the build here copies a small toolchain of its own.

const suffix = randomBytes(4).toString('hex');
const BUILT_IMAGE = `nightshift-test-built-${suffix}:latest`;
const NO_GIT_IMAGE = `nightshift-test-nogit-${suffix}:latest`;
let GO_IMAGE: string;
const host = () => process.env.NIGHTSHIFT_TEST_DOCKER_HOST!;

let docker: Docker;
let stack: TestStack;
let built: { code: number; stdout: string; stderr: string };
let TINY: string;

/** An image FROM the base whose only change is one RUN, built by the engine with nothing pulled. */
async function buildWithRun(tag: string, run: string): Promise<void> {
  const { Id } = await docker.getImage(SANDBOX_IMAGE).inspect();
  const context = pack();
  context.entry(
    { name: 'Containerfile' },
    `FROM ${Id.replace(/^sha256:/, '')}\nUSER 0:0\nRUN ${run}\nUSER 1000:1000\n`,
  );
  context.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of context as AsyncIterable<Buffer>) chunks.push(chunk);
  const stream = await docker.buildImage(Readable.from([Buffer.concat(chunks)]), {
    t: tag,
    dockerfile: 'Containerfile',
    pull: false,
    rm: true,
  });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, events: { error?: string }[]) => {
      const failed = err?.message ?? events.find((e) => e.error)?.error;
      if (failed) reject(new Error(`building ${tag}: ${failed}`));
      else resolve();
    }),
  );
}

/** A toolchain of its own: `bin/tiny`, which says its version. */
function tinyToolchain(): string {
  const dir = path.join(tempDir('tiny-toolchain'), 'tiny');
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  writeFileSync(path.join(dir, 'bin', 'tiny'), '#!/bin/sh\necho "tiny version 1"\n', { mode: 0o755 });
  return dir;
}

beforeAll(async () => {
  docker = dockerClient(host());
  GO_IMAGE = await toolchainImage(docker);
  TINY = tinyToolchain();
  built = await runCli(
    [
      'image',
      'build',
      '--toolchain',
      `tiny=${TINY}`,
      '--toolchain',
      'python=debian:python3-pytest',
      '--tag',
      BUILT_IMAGE,
    ],
    { DOCKER_HOST: host() },
    300_000,
  );
  await buildWithRun(NO_GIT_IMAGE, 'rm -f /usr/bin/git');
  stack = await startTestStack({
    env: {
      NIGHTSHIFT_DOCKER_IMAGES: `${GO_IMAGE},${BUILT_IMAGE},${NO_GIT_IMAGE}`,
      NIGHTSHIFT_TOOLCHAINS: 'go=/usr/local/go,python=/usr,node=/usr',
    },
  });
}, 600_000);
afterAll(async () => {
  await stack?.stop();
  for (const tag of [BUILT_IMAGE, NO_GIT_IMAGE])
    await docker
      ?.getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
});

test('nightshift image build: a host directory at /opt/toolchains/<name>, its bin on PATH; Debian packages by apt; labelled', async () => {
  expect(built.stderr).toBe('');
  expect(built.code).toBe(0);
  const image = await docker.getImage(BUILT_IMAGE).inspect();
  const base = await docker.getImage(SANDBOX_IMAGE).inspect();
  expect(built.stdout).toContain(`image ${BUILT_IMAGE} built: ${image.Id}`);
  // FROM the base: its layers, then two more (the packages, the copy), nothing else; the base's user kept.
  expect(image.RootFS.Layers!.slice(0, -2)).toEqual(base.RootFS.Layers);
  expect(image.RootFS.Layers).toHaveLength(base.RootFS.Layers!.length + 2);
  expect(image.Config.User).toBe(base.Config.User);
  expect(image.Config.Labels).toMatchObject({
    'nightshift.toolchains': 'tiny,python',
    'nightshift.toolchain.tiny': `${TINY} (tiny version 1)`,
    'nightshift.toolchain.python': 'debian: python3-pytest',
    'nightshift.base': `${SANDBOX_IMAGE}@${base.Id}`,
  });
  expect(image.Config.Env).toContain(
    'PATH=/opt/toolchains/tiny/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  );
  // What the image holds, run as its user: the copied tool on PATH, Debian's pytest.
  const container = await docker.createContainer({
    Image: BUILT_IMAGE,
    Cmd: ['sh', '-c', 'tiny && pytest --version 2>&1 && id -u'],
    // The engine may not raise the limits past the worker's (as the driver, sandbox/docker.ts).
    HostConfig: {
      NetworkMode: 'none',
      Ulimits: [
        { Name: 'nofile', Soft: 1024, Hard: 1024 },
        { Name: 'nproc', Soft: 1024, Hard: 1024 },
      ],
    },
  });
  await container.start();
  await container.wait();
  const out = String(await container.logs({ stdout: true, stderr: true }));
  await container.remove({ force: true });
  expect(out).toMatch(/tiny version 1[\s\S]*pytest \d+\.\d+[\s\S]*\b1000\b/);
  // The worker started with the images and checked them: the built ones are offered, the git-less one named.
  const log = readFileSync(path.join(stack.config.home, 'test.log'), 'utf8');
  expect(log).toContain(`image ${NO_GIT_IMAGE}: no git (not offered)`);
  expect(log).not.toContain(`image ${BUILT_IMAGE}: no`);
  expect(log).not.toContain(`image ${GO_IMAGE}: no`);
}, 60_000);

test('a spec with sandbox.image runs its check with plain go, and the state and the proof name that image', async () => {
  const repo = makeRepo({ 'README.md': 'notes\n' });
  const id = await stack.submit({
    title: 'go in the sandbox',
    task: 'Write down the Go version.',
    repo,
    agent: { kind: 'command', command: ['sh', '-c', 'mkdir -p notes && go version > notes/go.txt'] },
    scope: { allow: ['notes/**'] },
    checks: [{ name: 'go', run: 'go version && go env GOROOT', baseline: false }],
    sandbox: { driver: 'docker', image: GO_IMAGE },
    approval: { required: false },
    limits: { iterations: 1 },
  });
  const state = await stack.waitFor(id, ['succeeded', 'failed'], 180_000);
  expect({ status: state.status, failure: state.failure }).toEqual({ status: 'succeeded', failure: undefined });
  const { Id } = await docker.getImage(GO_IMAGE).inspect();
  const digest = Id.startsWith('sha256:') ? Id : `sha256:${Id}`;
  expect(state.agent?.image).toEqual({ name: GO_IMAGE, digest });
  expect(state.checks).toEqual([expect.objectContaining({ name: 'go', passed: true, exitCode: 0 })]);
  const checkLog = (await openArtifactStore(stack.config).get(state.checks[0].logId)).toString();
  expect(checkLog).toMatch(/go version go1\.\d+/);
  expect(checkLog).toContain('/opt/toolchains/go');
  // The proof's provenance names the image by its digest.
  const res = await fetch(`${stack.apiUrl}/v1/runs/${id}/proof`, {
    headers: { authorization: `Bearer ${stack.token}` },
  });
  expect(res.status).toBe(200);
  const files = await unpackTarGz(Buffer.from(await res.arrayBuffer()));
  const envelope = JSON.parse(files.get('attestation.json')!.toString());
  const provenance = JSON.parse(Buffer.from(envelope.payload, 'base64').toString());
  expect(provenance.predicate.buildDefinition.resolvedDependencies).toContainEqual({
    name: 'sandbox-image',
    uri: GO_IMAGE,
    digest: { sha256: digest.slice('sha256:'.length) },
  });
}, 240_000);

test('an image off the allowlist, or any image on bwrap, is a 400 naming sandbox.image; nothing starts', async () => {
  const before = (await stack.api('GET', '/v1/runs?limit=100')).body.runs.length;
  const submit = (sandbox: object) =>
    stack.api('POST', '/v1/runs', {
      body: {
        title: 'image',
        task: 't',
        repo: makeRepo({ 'a.txt': 'a\n' }),
        agent: { kind: 'command', command: ['true'] },
        sandbox,
      },
    });
  const off = await submit({ driver: 'docker', image: `nightshift-test-other-${suffix}` });
  expect(off.status).toBe(400);
  expect(off.text).toContain('sandbox.image');
  expect(stack.config.dockerImages).toEqual([imageRef(SANDBOX_IMAGE), GO_IMAGE, BUILT_IMAGE, NO_GIT_IMAGE]);
  expect(off.text).toContain(`allowed: ${stack.config.dockerImages.join(', ')}`);
  const onBwrap = await submit({ driver: 'bwrap', image: GO_IMAGE });
  expect(onBwrap.status).toBe(400);
  expect(onBwrap.text).toContain('sandbox.image');
  expect(onBwrap.text).toContain('only the docker driver starts from an image');
  expect((await stack.api('GET', '/v1/runs?limit=100')).body.runs).toHaveLength(before);
});

test('an allowed image without git is named by doctor and refused at provision, saying what it lacks', async () => {
  const doctor = await runCli(['doctor'], {
    DOCKER_HOST: host(),
    NIGHTSHIFT_HOME: stack.config.home,
    NIGHTSHIFT_DOCKER_IMAGES: `${GO_IMAGE},${BUILT_IMAGE},${NO_GIT_IMAGE}`,
  });
  expect(doctor.stdout).toMatch(new RegExp(`absent +image ${NO_GIT_IMAGE} +→ not offered: no git\\n`));
  expect(doctor.stdout).toMatch(new RegExp(`ok +image ${GO_IMAGE} +sha256:[0-9a-f]{12} offered\\n`));

  const id = await stack.submit({
    title: 'no git',
    task: 't',
    repo: makeRepo({ 'a.txt': 'a\n' }),
    agent: { kind: 'command', command: ['sh', '-c', 'echo b > a.txt'] },
    sandbox: { driver: 'docker', image: NO_GIT_IMAGE },
    approval: { required: false },
    limits: { iterations: 1 },
  });
  const state = await stack.waitFor(id, ['failed', 'succeeded'], 120_000);
  expect(state.status).toBe('failed');
  expect(state.failure?.stage).toBe('provision');
  expect(state.failure?.reason).toContain(`image ${NO_GIT_IMAGE} is not offered by this worker: no git`);
  expect(state.agent).toBeUndefined();
}, 180_000);

test('the worker checks again: a run started straight through Temporal with an image off its list, or on bwrap, fails at provision', async () => {
  const start = async (sandbox: object) => {
    const input = {
      spec: SpecSchema.parse({
        title: 'direct',
        task: 't',
        repo: makeRepo({ 'a.txt': 'a\n' }),
        agent: { kind: 'command', command: ['sh', '-c', 'echo b > a.txt'] },
        sandbox,
        approval: { required: false },
        limits: { iterations: 1 },
      }),
      specDigest: 'direct',
      submittedBy: 'temporal',
      settings: { heartbeatTimeoutMs: 5000, workerQueueTimeoutMs: 20_000, maxReprovisions: 0 },
    };
    const id = `direct-${randomBytes(6).toString('hex')}`;
    await stack.client.workflow.start('specRun', { ...runStartOptions(input, stack.config), workflowId: id });
    return stack.waitFor(id, ['failed', 'succeeded'], 120_000);
  };
  const [off, onBwrap] = await Promise.all([
    start({ driver: 'docker', image: SANDBOX_IMAGE.replace(/(:[^:/]*)?$/, ':not-allowed') }),
    start({ driver: 'bwrap', image: GO_IMAGE }),
  ]);
  expect(off).toMatchObject({ status: 'failed', failure: { stage: 'provision' } });
  expect(off.failure?.reason).toContain('is not offered by this worker (NIGHTSHIFT_DOCKER_IMAGES allows:');
  expect(onBwrap).toMatchObject({ status: 'failed', failure: { stage: 'provision' } });
  expect(onBwrap.failure?.reason).toContain('the bwrap driver starts from no image');
  expect([off.agent, onBwrap.agent]).toEqual([undefined, undefined]);
}, 180_000);

test('a docker run asking for toolchains starts from the allowed image labelled with them; without one, provision says what to build', async () => {
  const submit = (title: string, sandbox: object) =>
    stack.submit({
      title,
      task: 'Write down the Go version.',
      repo: makeRepo({ 'README.md': 'notes\n' }),
      agent: { kind: 'command', command: ['sh', '-c', 'mkdir -p notes && go version > notes/go.txt'] },
      scope: { allow: ['notes/**'] },
      sandbox,
      approval: { required: false },
      limits: { iterations: 1 },
    });
  const [picked, none, named] = await Promise.all([
    submit('go by toolchain', { driver: 'docker', toolchains: ['go'] }),
    submit('node by toolchain', { driver: 'docker', toolchains: ['node'] }),
    submit('go in the default image', { driver: 'docker', toolchains: ['go'], image: SANDBOX_IMAGE }),
  ]);
  const state = await stack.waitFor(picked, ['succeeded', 'failed'], 180_000);
  expect({ status: state.status, failure: state.failure }).toEqual({ status: 'succeeded', failure: undefined });
  expect(state.agent?.image?.name).toBe(GO_IMAGE);
  const build = 'build one with `nightshift image build --toolchain';
  const refused = await stack.waitFor(none, ['failed', 'succeeded'], 120_000);
  expect(refused.failure).toEqual({
    stage: 'provision',
    reason: `no image this worker offers holds the toolchains node (images: ${imageRef(SANDBOX_IMAGE)} (none); ${GO_IMAGE} (go, python); ${BUILT_IMAGE} (tiny, python); ${NO_GIT_IMAGE} (none)): ${build} node=…\` and allow it in NIGHTSHIFT_DOCKER_IMAGES (docs/images.md)`,
  });
  const without = await stack.waitFor(named, ['failed', 'succeeded'], 120_000);
  expect(without.failure).toEqual({
    stage: 'provision',
    reason: `image ${SANDBOX_IMAGE} holds no toolchain go (its nightshift.toolchains: none): ${build} go=…\` and allow it in NIGHTSHIFT_DOCKER_IMAGES (docs/images.md)`,
  });
  expect([refused.agent, without.agent]).toEqual([undefined, undefined]);
}, 240_000);
