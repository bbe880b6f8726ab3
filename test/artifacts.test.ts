import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../config';
import { verifyBundle } from '../proof/bundle';
import { ArtifactNotFoundError, withArtifactFile, type ArtifactStore } from '../store/artifacts';
import { openArtifactStore } from '../store/openArtifacts';
import { s3ClientFor, type S3ArtifactsConfig } from '../store/s3Artifacts';
import { S3_TEST_CREDENTIALS, startS3Server, type S3Server } from './helpers/s3Server';
import { gitIn, makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// The artifact store's contract, run against both drivers: a directory, and a real S3-compatible server (gofakes3).

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(async () => {
  await s3?.stop();
});

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/** Every key in the bucket, relative to the store's prefix (a key outside it keeps its full name, and shows). */
async function bucketKeys(config: S3ArtifactsConfig): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3ClientFor(config).send(
      new ListObjectsV2Command({ Bucket: config.bucket, ContinuationToken: token }),
    );
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return keys.map((k) => (k.startsWith(config.prefix) ? k.slice(config.prefix.length) : k)).sort();
}

interface Driver {
  store: ArtifactStore;
  /** The names of everything the driver's storage holds: the ids, and nothing else (no temp files). */
  objects(): Promise<string[]>;
}

const drivers: [string, () => Promise<Driver>][] = [
  [
    'fs',
    async () => {
      const dir = path.join(tempDir('artifacts'), 'store');
      const objects = async () =>
        existsSync(dir)
          ? (await fs.readdir(dir, { recursive: true, withFileTypes: true }))
              .filter((e) => e.isFile())
              .map((e) => e.name)
              .sort()
          : [];
      return { store: openArtifactStore({ artifacts: { driver: 'fs', dir } }), objects };
    },
  ],
  [
    's3',
    async () => {
      const config = s3.artifacts(`artifacts-${randomBytes(4).toString('hex')}`, 'nightshift/');
      await s3.createBucket(config.bucket);
      return { store: openArtifactStore({ artifacts: config }), objects: () => bucketKeys(config) };
    },
  ],
];

describe.each(drivers)('the %s driver', (_name, make) => {
  let store: ArtifactStore;
  let objects: () => Promise<string[]>;
  beforeAll(async () => {
    ({ store, objects } = await make());
  });

  test('text and binary (6 MiB) round-trip under the sha256 of their bytes, whole and streamed', async () => {
    const text = 'check value passed\nünïcödé ✓\n';
    const binary = randomBytes(6 * 1024 * 1024);
    const textId = await store.put(text);
    const binaryId = await store.put(binary);
    expect(textId).toBe(sha256(text));
    expect(binaryId).toBe(sha256(binary));
    expect((await store.get(textId)).toString('utf8')).toBe(text);
    expect((await store.get(binaryId)).equals(binary)).toBe(true);
    const streamed: Buffer[] = [];
    for await (const chunk of await store.open(binaryId)) streamed.push(chunk as Buffer);
    expect(Buffer.concat(streamed).equals(binary)).toBe(true);
    expect(await objects()).toEqual(expect.arrayContaining([textId, binaryId]));
  });

  test('putting the same bytes again gives the same id and stores them once', async () => {
    const before = await objects();
    const content = `idempotent ${randomBytes(8).toString('hex')}`;
    const first = await store.put(content);
    const second = await store.put(Buffer.from(content));
    expect(second).toBe(first);
    expect(await objects()).toEqual([...before, first].sort());
  });

  test('has() tells a stored id from an unknown one', async () => {
    const content = randomBytes(1024);
    const id = sha256(content);
    expect(await store.has(id)).toBe(false);
    await store.put(content);
    expect(await store.has(id)).toBe(true);
  });

  test('an unknown id is a clear error from get and open; a malformed id is refused', async () => {
    const unknown = sha256('never stored');
    await expect(store.get(unknown)).rejects.toThrow(ArtifactNotFoundError);
    await expect(store.get(unknown)).rejects.toThrow(
      `artifact ${unknown} is not in the artifact store (${store.location})`,
    );
    await expect(store.open(unknown)).rejects.toThrow(ArtifactNotFoundError);
    await expect(store.get('../../etc/passwd')).rejects.toThrow('not an artifact id: ../../etc/passwd');
    await expect(store.has('ABC')).rejects.toThrow('not an artifact id: ABC');
  });

  test('concurrent puts of the same 5 MiB agree on the id and leave one whole object', async () => {
    const before = await objects();
    const content = randomBytes(5 * 1024 * 1024);
    const ids = await Promise.all(Array.from({ length: 6 }, () => store.put(content)));
    expect(new Set(ids)).toEqual(new Set([sha256(content)]));
    expect(await objects()).toEqual([...before, ids[0]].sort());
    expect((await store.get(ids[0])).equals(content)).toBe(true);
  });

  test('putFile takes a file in; withArtifactFile hands out a local copy and removes it afterwards', async () => {
    const source = path.join(tempDir('bundle'), 'checkpoint.bundle');
    const content = randomBytes(7 * 1024 * 1024 + 13);
    await fs.writeFile(source, content);
    const id = await store.putFile(source);
    expect(id).toBe(sha256(content));
    let copy = '';
    const size = await withArtifactFile(store, id, async (file) => {
      copy = file;
      expect((await fs.readFile(file)).equals(content)).toBe(true);
      return (await fs.stat(file)).size;
    });
    expect(size).toBe(content.length);
    expect(existsSync(copy)).toBe(false);
    expect(existsSync(path.dirname(copy))).toBe(false);
    await expect(withArtifactFile(store, sha256('no such bundle'), async () => 'used')).rejects.toThrow(
      ArtifactNotFoundError,
    );
  });

  // Last: names are objects of their own, beside the ids the tests above count.
  test('a name points at an artifact, the last writer wins; an unknown name is undefined; a malformed one is refused', async () => {
    const [a, b] = [await store.put('environment one'), await store.put('environment two')];
    expect(await store.named('env-0123abc')).toBeUndefined();
    await store.setName('env-0123abc', a);
    expect(await store.named('env-0123abc')).toBe(a);
    await store.setName('env-0123abc', b);
    expect(await store.named('env-0123abc')).toBe(b);
    await expect(store.named('../ids/x')).rejects.toThrow('not an artifact name: ../ids/x');
    await expect(store.setName('env-x', 'not-an-id')).rejects.toThrow('not an artifact id: not-an-id');
    expect(await store.named('env-x')).toBeUndefined();
  });
});

test('an S3 store whose bucket does not exist fails in one line naming the store and S3’s answer', async () => {
  const store = openArtifactStore({ artifacts: s3.artifacts('no-such-bucket', 'x/') });
  await expect(store.put('anything')).rejects.toThrow(
    /^artifact store s3:\/\/no-such-bucket\/x\/: storing [0-9a-f]{64} failed: NoSuchBucket: [^\n]+$/,
  );
  await expect(store.get(sha256('anything'))).rejects.toThrow(
    /^artifact store s3:\/\/no-such-bucket\/x\/: reading [0-9a-f]{64} failed: NoSuchBucket: [^\n]+$/,
  );
});

test('NIGHTSHIFT_ARTIFACTS picks the driver; a bad value, or S3 credentials a sandbox could be given, are refused in one line', () => {
  const home = '/srv/nightshift';
  expect(loadConfig({ NIGHTSHIFT_HOME: home }).artifacts).toEqual({ driver: 'fs', dir: '/srv/nightshift/artifacts' });
  expect(loadConfig({ NIGHTSHIFT_HOME: home, NIGHTSHIFT_ARTIFACTS: 'file:///mnt/shared/artifacts' }).artifacts).toEqual(
    { driver: 'fs', dir: '/mnt/shared/artifacts' },
  );
  expect(
    loadConfig({
      NIGHTSHIFT_HOME: home,
      NIGHTSHIFT_ARTIFACTS: 's3://ns-bucket/fleet/a/',
      NIGHTSHIFT_S3_ENDPOINT: 'http://127.0.0.1:9000',
      AWS_ACCESS_KEY_ID: 'id',
      AWS_SECRET_ACCESS_KEY: 'key',
      AWS_REGION: 'eu-west-1',
    }).artifacts,
  ).toEqual({
    driver: 's3',
    bucket: 'ns-bucket',
    prefix: 'fleet/a/',
    endpoint: 'http://127.0.0.1:9000',
    region: 'eu-west-1',
    credentials: { accessKeyId: 'id', secretAccessKey: 'key' },
  });
  expect(loadConfig({ NIGHTSHIFT_HOME: home, NIGHTSHIFT_ARTIFACTS: 's3://ns-bucket' }).artifacts).toEqual({
    driver: 's3',
    bucket: 'ns-bucket',
    prefix: '',
    region: 'us-east-1',
  });
  expect(() => loadConfig({ NIGHTSHIFT_ARTIFACTS: 'gs://bucket/x' })).toThrow(
    'NIGHTSHIFT_ARTIFACTS must be an absolute directory, a file:// URL or s3://bucket/prefix, got "gs://bucket/x"',
  );
  expect(() =>
    loadConfig({ NIGHTSHIFT_ARTIFACTS: 's3://bkt/x', NIGHTSHIFT_ALLOWED_SECRETS: 'NPM_TOKEN,AWS_SECRET_ACCESS_KEY' }),
  ).toThrow(
    "NIGHTSHIFT_ALLOWED_SECRETS names AWS_SECRET_ACCESS_KEY, the artifact store's S3 credentials, which no sandbox may get",
  );
});

describe('a run on the real stack with the S3 driver', () => {
  const bucket = 'nightshift-runs';
  let stack: TestStack;
  beforeAll(async () => {
    await s3.createBucket(bucket);
    stack = await startTestStack({
      env: {
        NIGHTSHIFT_ARTIFACTS: `s3://${bucket}/prod`,
        NIGHTSHIFT_S3_ENDPOINT: s3.endpoint,
        AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey,
        AWS_REGION: 'us-east-1',
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test('logs, diff, checkpoints and the proof land in the bucket; the proof is served from it and verifies; nothing on disk', async () => {
    expect(stack.config.artifacts).toMatchObject({ driver: 's3', bucket, prefix: 'prod/' });
    const repo = makeRepo(VALUE_REPO);
    // The agent prints its environment (no S3 credential may be there) and records each iteration it sees.
    const id = await stack.submit(
      spec(repo, 'env; echo "iteration $NIGHTSHIFT_ITERATION" >> notes/iterations.txt; echo 2 > src/value.txt'),
    );
    const first = await stack.waitFor(id, ['awaiting_approval']);
    // Requested changes re-provision the workspace from the checkpoint bundle, fetched from the bucket.
    expect((await stack.api('POST', `/v1/runs/${id}/request-changes`, { body: { comment: 'once more' } })).status).toBe(
      202,
    );
    let second = first;
    while (second.iteration < 2) second = await stack.waitFor(id, ['awaiting_approval']);
    expect((await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'from S3' } })).status).toBe(202);
    const done = await stack.waitFor(id, ['succeeded']);

    // Delivery fetched the last checkpoint from the bucket: both iterations' work is on the branch.
    expect(gitIn(repo, 'show', `${done.branch}:notes/iterations.txt`)).toBe('iteration 1\niteration 2\n');
    expect(gitIn(repo, 'show', `${done.branch}:src/value.txt`)).toBe('2\n');

    const config = stack.config.artifacts as S3ArtifactsConfig;
    const keys = await bucketKeys(config);
    const expected = [
      first.checkpoint!.bundleId!,
      done.checkpoint!.bundleId!,
      done.diffId!,
      done.agent!.logId,
      ...done.checks.map((c) => c.logId),
      done.proofId!,
    ];
    expect(keys).toEqual(expect.arrayContaining(expected));
    expect(keys.every((k) => /^[0-9a-f]{64}$/.test(k))).toBe(true);
    expect(first.checkpoint!.bundleId).not.toBe(done.checkpoint!.bundleId);
    expect(existsSync(path.join(stack.config.home, 'artifacts'))).toBe(false);

    const store = openArtifactStore(stack.config);
    const proof = await fetch(`${stack.apiUrl}/v1/runs/${id}/proof`, {
      headers: { authorization: `Bearer ${stack.token}` },
    });
    expect(proof.status).toBe(200);
    expect(proof.headers.get('content-type')).toBe('application/gzip');
    const served = Buffer.from(await proof.arrayBuffer());
    expect(served.equals(await store.get(done.proofId!))).toBe(true);
    expect(sha256(served)).toBe(done.proofId);
    const key = (await stack.api('GET', '/v1/keys')).body.keys[0].publicKeyPem;
    const verified = await verifyBundle(served, key);
    expect(verified).toMatchObject({
      ok: true,
      files: expect.arrayContaining(['manifest.json', 'diff.patch', 'logs/agent.log']),
    });

    const diff = await stack.api('GET', `/v1/runs/${id}/diff`);
    expect(diff.text).toBe((await store.get(done.diffId!)).toString('utf8'));
    expect(diff.text).toMatch(/^\+iteration 2$/m);

    // The credentials are the server's: not in the sandbox's environment, not in Temporal's history.
    const agentLog = (await store.get(done.agent!.logId)).toString('utf8');
    expect(agentLog).toMatch(/^HOME=/m);
    expect(agentLog).not.toContain(S3_TEST_CREDENTIALS.secretAccessKey);
    expect(agentLog).not.toContain('AWS_');
    // Payloads come base64-encoded: decode them, so the search can find what is there (the proof's id is).
    const history = JSON.stringify(await stack.client.workflow.getHandle(id).fetchHistory()).replace(
      /"data":"([A-Za-z0-9+/]*=*)"/g,
      (_m, b64: string) => Buffer.from(b64, 'base64').toString('utf8'),
    );
    expect(history.includes(done.proofId!)).toBe(true);
    expect(history.includes(S3_TEST_CREDENTIALS.secretAccessKey)).toBe(false);
    expect(history.includes(S3_TEST_CREDENTIALS.accessKeyId)).toBe(false);
  });
});
