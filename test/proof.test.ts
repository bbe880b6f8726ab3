import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { sha256, signStatement, verifyBundle } from '../proof/bundle';
import { ensureSigningKey, keyIdOf, type SigningKey } from '../proof/keys';
import type { ProofLogEntry } from '../proof/log';
import type { Provenance, Statement } from '../proof/statements';
import { openArtifactStore } from '../store/openArtifacts';
import { cosignVerify, ensureCosign } from './helpers/cosign';
import { packTarGz, unpackTarGz } from '../proof/tar';
import { makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// A succeeded run's signed proof bundle, checked the way someone who trusts neither the agent nor the server would:
// offline, with the server's public key, by the real CLI.

const CLI = path.resolve(__dirname, '..', 'cli', 'main.js');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** An inline script's payload, as big as a new user's was (6 KB of base64): the log headers must not repeat it. */
const PAYLOAD = 'QUJD'.repeat(1536);

let stack: TestStack;
let id: string;
let bundle: Buffer;
let publicKeyPem: string;
let dir: string;

beforeAll(async () => {
  stack = await startTestStack();
  id = await stack.submit(spec(makeRepo(VALUE_REPO), `echo 2 > src/value.txt; : ${PAYLOAD}`));
  await stack.waitFor(id, ['awaiting_approval']);
  expect((await stack.api('GET', `/v1/runs/${id}/proof`)).status).toBe(404);
  await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'verified by hand' } });
  await stack.waitFor(id, ['succeeded']);
  dir = tempDir('proof');
  const download = await cli(['proof', id, '-o', dir], stack.env);
  expect(download.code).toBe(0);
  bundle = readFileSync(path.join(dir, `${id}-proof.tar.gz`));
  publicKeyPem = (await stack.api('GET', '/v1/keys')).body.keys[0].publicKeyPem;
  writeFileSync(path.join(dir, 'server.pub'), publicKeyPem);
});
afterAll(async () => {
  await stack?.stop();
});

/** The in-toto statement inside a DSSE envelope file of the bundle. */
const statementIn = (files: Map<string, Buffer>, name: string) =>
  JSON.parse(Buffer.from(JSON.parse(files.get(name)!.toString()).payload, 'base64').toString());

test('the bundle holds the evidence; `nightshift verify --key` accepts it offline and names the run', async () => {
  const files = await unpackTarGz(bundle);
  expect([...files.keys()].sort()).toEqual([
    'attestation.json',
    'attestations/decisions.json',
    'attestations/test-value.json',
    'diff.patch',
    'logs/agent.log',
    'logs/check-value.log',
    'manifest.json',
    'review.md',
  ]);
  const manifest = JSON.parse(files.get('manifest.json')!.toString());
  expect(manifest).toMatchObject({
    runId: id,
    approval: { kind: 'approve', by: 'admin', comment: 'verified by hand' },
  });
  expect(files.get('diff.patch')!.toString()).toMatch(/^\+2$/m);
  // Offline: no server in the environment, only the bundle and the key.
  const r = await cli(['verify', path.join(dir, `${id}-proof.tar.gz`), '--key', path.join(dir, 'server.pub')], {
    NIGHTSHIFT_URL: 'http://127.0.0.1:1',
    NIGHTSHIFT_TOKEN: '',
  });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`verified: run ${id}, 7 files, signed by ${keyIdOf(publicKeyPem)}`);
  expect(r.stdout).toContain(`final-commit  gitCommit:${manifest.finalCommit}`);
});

test('attestation.json is SLSA Provenance v1 of the run: the spec, policy, inputs and builder, every other file by digest', async () => {
  const files = await unpackTarGz(bundle);
  const manifest = JSON.parse(files.get('manifest.json')!.toString());
  const provenance = statementIn(files, 'attestation.json');
  expect(provenance).toMatchObject({
    _type: 'https://in-toto.io/Statement/v1',
    predicateType: 'https://slsa.dev/provenance/v1',
  });
  const digest = (name: string) => ({ sha256: sha256(files.get(name)!) });
  expect(provenance.subject).toEqual([
    { name: 'final-commit', digest: { gitCommit: manifest.finalCommit } },
    { name: 'diff.patch', digest: digest('diff.patch') },
    ...[
      'manifest.json',
      'logs/agent.log',
      'logs/check-value.log',
      'review.md',
      'attestations/test-value.json',
      'attestations/decisions.json',
    ].map((name) => ({ name, digest: digest(name) })),
  ]);
  const { buildDefinition, runDetails } = provenance.predicate;
  expect(buildDefinition).toMatchObject({
    buildType: 'https://nightshift.dev/run/v1',
    externalParameters: {
      spec: { digest: { sha256: manifest.specDigest.replace('sha256:', '') } },
      repo: manifest.repo,
      submittedBy: 'admin',
      agent: { kind: 'command' },
    },
    internalParameters: {
      sandbox: { driver: 'bwrap', network: [] },
      scope: { allow: ['src/**', 'notes/**'] },
      checks: [{ name: 'value', command: expect.any(String) }],
    },
  });
  expect(buildDefinition.resolvedDependencies).toEqual([
    { name: 'base', uri: `${manifest.repo}@${manifest.base}`, digest: { gitCommit: manifest.baseCommit } },
    { name: 'agent', uri: 'command' },
  ]);
  expect(runDetails.builder).toEqual({
    id: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/#\/builder$/),
    version: { nightshift: expect.stringMatching(/^\d+\.\d+\.\d+/), worker: expect.any(String) },
  });
  expect(runDetails.metadata).toEqual({
    invocationId: id,
    startedOn: expect.any(String),
    finishedOn: expect.any(String),
  });
  expect(runDetails.byproducts.map((b: { name: string }) => b.name)).toContain('logs/agent.log');
});

test('a Test Result per check and a statement of the decisions, each about the commit and the diff', async () => {
  const files = await unpackTarGz(bundle);
  const manifest = JSON.parse(files.get('manifest.json')!.toString());
  const change = [
    { name: 'final-commit', digest: { gitCommit: manifest.finalCommit } },
    { name: 'diff.patch', digest: { sha256: sha256(files.get('diff.patch')!) } },
  ];
  const test = statementIn(files, 'attestations/test-value.json');
  expect(test).toMatchObject({ subject: change, predicateType: 'https://in-toto.io/attestation/test-result/v0.1' });
  // The value check is a shell test that prints no test counts: passed by its exit code alone, WARNED.
  expect(test.predicate).toEqual({
    result: 'WARNED',
    unverified: expect.stringMatching(/^no test counts could be read neither at the base nor now/),
    configuration: [
      {
        name: 'logs/check-value.log',
        digest: { sha256: sha256(files.get('logs/check-value.log')!) },
        annotations: { command: manifest.checks[0].command, exitCode: 0, durationMs: expect.any(Number) },
      },
    ],
    url: expect.stringContaining(`/#/runs/${id}`),
    passedTests: [],
    warnedTests: [],
    failedTests: [],
  });
  const decisions = statementIn(files, 'attestations/decisions.json');
  expect(decisions).toMatchObject({ subject: change, predicateType: 'https://nightshift.dev/decisions/v1' });
  expect(decisions.predicate).toMatchObject({
    runId: id,
    review: { verdict: 'approve' },
    decisions: [{ kind: 'approve', by: 'admin', comment: 'verified by hand', channel: 'api', verified: true }],
  });
});

test('one flipped byte in any file, the manifest or the signature fails verification, naming it', async () => {
  const files = await unpackTarGz(bundle);
  for (const name of files.keys()) {
    const tampered = new Map(files);
    const content = Buffer.from(files.get(name)!);
    const at = name === 'attestation.json' ? content.indexOf('"sig": "') + 10 : Math.floor(content.length / 2);
    content[at] ^= 0x01;
    tampered.set(name, content);
    const result = await verifyBundle(
      await packTarGz([...tampered].map(([n, c]) => ({ name: n, content: c }))),
      publicKeyPem,
    );
    expect({ name, ok: result.ok }).toEqual({ name, ok: false });
    if (!result.ok)
      expect(result.problem).toMatch(
        name === 'attestation.json'
          ? /^attestation\.json/
          : new RegExp(`^${name.replace('.', '\\.')} does not match its digest`),
      );
  }
  // A file added after signing.
  const extra = [...files].map(([n, c]) => ({ name: n, content: c }));
  extra.push({ name: 'logs/planted.log', content: Buffer.from('trust me') });
  expect(await verifyBundle(await packTarGz(extra), publicKeyPem)).toEqual({
    ok: false,
    problem: 'logs/planted.log is not in the signed statement',
  });
  // And through the CLI: exit 1, one line.
  const manifest = Buffer.from(files.get('manifest.json')!);
  manifest[10] ^= 0x01;
  const bad = path.join(dir, 'tampered.tar.gz');
  writeFileSync(
    bad,
    await packTarGz([...files].map(([n, c]) => ({ name: n, content: n === 'manifest.json' ? manifest : c }))),
  );
  const r = await cli(['verify', bad, '--key', path.join(dir, 'server.pub')]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(
    /^nightshift: verification failed: manifest\.json does not match its digest \(sha256:[0-9a-f]{64}\)\n$/,
  );
});

/** In the provenance, the file whose digest was `before` now has `after`. */
function redigest(provenance: Statement<Provenance>, before: string, after: string): void {
  for (const r of [...provenance.subject, ...provenance.predicate.runDetails.byproducts])
    if (r.digest?.sha256 === before) r.digest.sha256 = after;
}

/**
 * The bundle's statements signed again with another ed25519 key (a forger's), the provenance naming the new envelopes.
 */
async function resignedWithOtherKey(): Promise<{ files: Map<string, Buffer>; otherPem: string }> {
  const files = await unpackTarGz(bundle);
  const other = generateKeyPairSync('ed25519');
  const otherPem = other.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const key = { privateKey: other.privateKey, publicKeyPem: otherPem, keyId: keyIdOf(otherPem) };
  const provenance = statementIn(files, 'attestation.json') as Statement<Provenance>;
  for (const name of [...files.keys()].filter((n) => n.startsWith('attestations/'))) {
    const before = sha256(files.get(name)!);
    files.set(name, signStatement(statementIn(files, name), key));
    redigest(provenance, before, sha256(files.get(name)!));
  }
  files.set('attestation.json', signStatement(provenance, key));
  return { files, otherPem };
}

test('a bundle signed by another key fails against the server’s key', async () => {
  const { files, otherPem } = await resignedWithOtherKey();
  const forged = await packTarGz([...files].map(([name, content]) => ({ name, content })));
  expect((await verifyBundle(forged, otherPem)).ok).toBe(true);
  const result = await verifyBundle(forged, publicKeyPem);
  expect(result).toEqual({
    ok: false,
    problem: `attestation.json is not signed by key ${keyIdOf(publicKeyPem)} (signed by ${keyIdOf(otherPem)})`,
  });
});

test("the agent's log header is one line, its inline command cut with an ellipsis, live and in the proof; the manifest keeps it whole", async () => {
  const headerOf = (log: string) => log.split('\n').filter((l) => l.startsWith('=== agent, iteration 1: '));
  const stored = (await unpackTarGz(bundle)).get('logs/agent.log')!.toString();
  const live = (await stack.api('GET', `/v1/runs/${id}/logs`)).text;
  for (const log of [stored, live]) {
    expect(headerOf(log)).toEqual([
      expect.stringMatching(
        /^=== agent, iteration 1: sh -c mkdir -p notes; echo 2 > src\/value\.txt; : (QUJD)+Q?U?J?… ===$/,
      ),
    ]);
    expect(headerOf(log)[0].length).toBe('=== agent, iteration 1: '.length + 200 + ' ==='.length);
    expect(log).not.toContain(PAYLOAD.slice(0, 1000));
  }
  expect(JSON.parse((await unpackTarGz(bundle)).get('manifest.json')!.toString()).agent.command).toContain(PAYLOAD);
});

test('proof -o NAME.tar.gz writes that file (its directory made), not a directory of that name', async () => {
  const file = path.join(dir, 'new', 'x.tar.gz');
  const r = await cli(['proof', id, '-o', file], stack.env);
  expect(r).toMatchObject({ code: 0, stdout: `${file}\n` });
  expect(statSync(file).isFile()).toBe(true);
  expect(readFileSync(file)).toEqual(bundle);
});

describe('verify takes the bundle as a user may hold it', () => {
  const key = () => path.join(dir, 'server.pub');
  let unpacked: string;
  beforeAll(() => {
    unpacked = path.join(dir, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', path.join(dir, `${id}-proof.tar.gz`), '-C', unpacked]);
  });

  test('unpacked into a directory (tar xzf): verified, as the .tar.gz is; a file added to it is named', async () => {
    const r = await cli(['verify', unpacked, '--key', key()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`verified: run ${id}, 7 files, signed by ${keyIdOf(publicKeyPem)}`);
    const planted = path.join(dir, 'planted');
    execFileSync('cp', ['-r', unpacked, planted]);
    writeFileSync(path.join(planted, 'logs', 'planted.log'), 'trust me');
    expect(await cli(['verify', planted, '--key', key()])).toMatchObject({
      code: 1,
      stderr: 'nightshift: verification failed: logs/planted.log is not in the signed statement\n',
    });
  });

  test('repacked with tar, directory entries and "./" names included: verified', async () => {
    const named = path.join(dir, 'repacked.tar.gz');
    execFileSync('tar', [
      '-czf',
      named,
      '-C',
      unpacked,
      'attestation.json',
      'attestations',
      'diff.patch',
      'logs',
      'manifest.json',
      'review.md',
    ]);
    expect(execFileSync('tar', ['-tzf', named], { encoding: 'utf8' })).toMatch(/^logs\/$/m);
    const dotted = path.join(dir, 'dotted.tar.gz');
    execFileSync('tar', ['-czf', dotted, '-C', unpacked, '.']);
    expect(execFileSync('tar', ['-tzf', dotted], { encoding: 'utf8' })).toMatch(/^\.\/logs\/agent\.log$/m);
    for (const file of [named, dotted]) {
      const r = await cli(['verify', file, '--key', key()]);
      expect({ file, code: r.code, stderr: r.stderr }).toEqual({ file, code: 0, stderr: '' });
      expect(r.stdout).toContain(`verified: run ${id}, 7 files`);
    }
  });

  test('something that is neither: one line saying what it wants', async () => {
    const r = await cli(['verify', key(), '--key', key()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^nightshift: verification failed: not a proof bundle \(the \.tar\.gz `nightshift proof` writes, or the directory it unpacks to\): .*\n$/,
    );
  });
});

/** Run a spec to success: approved through the API. */
async function succeededRun(): Promise<string> {
  const run = await stack.submit(spec(makeRepo(VALUE_REPO), 'echo 2 > src/value.txt'));
  await stack.waitFor(run, ['awaiting_approval']);
  await stack.api('POST', `/v1/runs/${run}/approve`, { body: {} });
  await stack.waitFor(run, ['succeeded']);
  return run;
}

/**
 * The bundle with one file changed and its statements signed again with `key`: what an insider holding it could make.
 */
async function alteredAndResigned(
  source: Buffer,
  name: string,
  content: Buffer,
  key: SigningKey,
  edit: (provenance: Statement<Provenance>) => void = () => {},
): Promise<Buffer> {
  const files = await unpackTarGz(source);
  const before = sha256(files.get(name)!);
  files.set(name, content);
  const provenance = statementIn(files, 'attestation.json') as Statement<Provenance>;
  redigest(provenance, before, sha256(content));
  edit(provenance);
  files.set('attestation.json', signStatement(provenance, key));
  return packTarGz([...files].map(([n, c]) => ({ name: n, content: c })));
}

describe('cosign, an independent verifier, offline with the server’s public key', () => {
  let cosign: string;
  let unpacked: string;
  const verify = (type: string, signature: string, blob: string, key = path.join(dir, 'server.pub')) =>
    cosignVerify(cosign, { key, type, signature, blob });
  beforeAll(async () => {
    cosign = await ensureCosign();
    unpacked = tempDir('cosign');
    execFileSync('tar', ['-xzf', path.join(dir, `${id}-proof.tar.gz`), '-C', unpacked]);
  });

  test('verifies the provenance (about the diff, or any file), each Test Result and the decisions', () => {
    const at = (name: string) => path.join(unpacked, name);
    for (const [type, signature, blob] of [
      ['slsaprovenance1', 'attestation.json', 'diff.patch'],
      ['slsaprovenance1', 'attestation.json', 'manifest.json'],
      ['slsaprovenance1', 'attestation.json', 'logs/agent.log'],
      ['https://in-toto.io/attestation/test-result/v0.1', 'attestations/test-value.json', 'diff.patch'],
      ['https://nightshift.dev/decisions/v1', 'attestations/decisions.json', 'diff.patch'],
    ]) {
      const r = verify(type, at(signature), at(blob));
      expect({ signature, blob, code: r.code, ok: r.output.includes('Verified OK') }).toEqual({
        signature,
        blob,
        code: 0,
        ok: true,
      });
    }
    // The wrong type is refused: cosign reads what was attested.
    expect(
      verify('https://in-toto.io/attestation/test-result/v0.1', at('attestation.json'), at('diff.patch')).code,
    ).not.toBe(0);
  });

  test('rejects a flipped byte in a file, an edited manifest, and statements signed by another key', async () => {
    const tampered = tempDir('cosign-tampered');
    const write = (name: string, content: Buffer) => {
      mkdirSync(path.dirname(path.join(tampered, name)), { recursive: true });
      writeFileSync(path.join(tampered, name), content);
      return path.join(tampered, name);
    };
    const files = await unpackTarGz(bundle);
    const flipped = (name: string) => {
      const content = Buffer.from(files.get(name)!);
      content[Math.floor(content.length / 2)] ^= 0x01;
      return content;
    };
    const provenance = path.join(unpacked, 'attestation.json');
    const manifest = JSON.parse(files.get('manifest.json')!.toString());
    const cases = [
      verify('slsaprovenance1', provenance, write('diff.patch', flipped('diff.patch'))),
      verify('slsaprovenance1', provenance, write('logs/agent.log', flipped('logs/agent.log'))),
      verify(
        'slsaprovenance1',
        provenance,
        write(
          'manifest.json',
          Buffer.from(
            JSON.stringify({ ...manifest, approval: { ...manifest.approval, by: 'mallory' } }, null, 2) + '\n',
          ),
        ),
      ),
      verify(
        'https://in-toto.io/attestation/test-result/v0.1',
        path.join(unpacked, 'attestations/test-value.json'),
        write('diff.patch', flipped('diff.patch')),
      ),
    ];
    const { files: forged } = await resignedWithOtherKey();
    for (const name of ['attestation.json', 'attestations/test-value.json', 'attestations/decisions.json']) {
      cases.push(
        verify(
          name === 'attestation.json' ? 'slsaprovenance1' : statementIn(forged, name).predicateType,
          write(`forged/${name}`, forged.get(name)!),
          path.join(unpacked, 'diff.patch'),
        ),
      );
    }
    for (const r of cases) {
      expect(r.code).not.toBe(0);
      expect(r.output).not.toContain('Verified OK');
    }
  });
});

describe('the proof log', () => {
  let second: string;
  let logFile: string;
  let original: Buffer;
  beforeAll(async () => {
    second = await succeededRun();
    logFile = path.join(stack.config.home, 'proofs', 'log.jsonl');
    original = readFileSync(logFile);
  });
  afterEach(() => writeFileSync(logFile, original));
  const entries = async (): Promise<ProofLogEntry[]> => (await stack.api('GET', '/v1/proofs/log')).body.entries;

  test('each proof names the one before it inside its signed provenance; `verify --log` walks them all', async () => {
    const log = await entries();
    expect(log.map((e) => [e.seq, e.runId])).toEqual([
      [1, id],
      [2, second],
    ]);
    expect(log[0].proof).toBe(sha256(bundle));
    expect(log[1].previous).toBe(log[0].proof);
    const served = await fetch(`${stack.apiUrl}/v1/proofs/${log[1].proof}`, {
      headers: { authorization: `Bearer ${stack.token}` },
    });
    const verified = await verifyBundle(Buffer.from(await served.arrayBuffer()), publicKeyPem);
    expect(verified).toMatchObject({ ok: true, runId: second, previous: log[0].proof });
    const r = await cli(['verify', '--log'], stack.env);
    expect(r).toEqual({
      code: 0,
      stdout: `proof log verified: 2 proofs, each naming the one before it; the latest is sha256:${log[1].proof}\n`,
      stderr: `#1 ${id} sha256:${log[0].proof} ok\n#2 ${second} sha256:${log[1].proof} ok\n`,
    });
  });

  test('a proof removed from the log is found, renumbered or not', async () => {
    const [, secondLine] = original.toString().trim().split('\n');
    writeFileSync(logFile, secondLine + '\n');
    expect(await cli(['verify', '--log'], stack.env)).toMatchObject({
      code: 1,
      stderr: 'nightshift: proof log broken: entry 1 is numbered #2; an entry was removed\n',
    });
    const renumbered = { ...JSON.parse(secondLine), seq: 1, previous: undefined };
    writeFileSync(logFile, JSON.stringify(renumbered) + '\n');
    const r = await cli(['verify', '--log'], stack.env);
    expect(r).toMatchObject({
      code: 1,
      stderr: `nightshift: proof log broken: proof #1 (run ${second}) names sha256:${sha256(bundle)} before it, but the log has nothing: a proof was removed or replaced\n`,
    });
  });

  test('a proof replaced, even by one signed with the server’s own key, is found', async () => {
    // An insider with the key rewrites the first run's review and logs the new proof in place of the old one.
    const key = ensureSigningKey(stack.config.home);
    const replacement = await alteredAndResigned(
      bundle,
      'review.md',
      Buffer.from('# Review: approve\n\nLooked fine.\n'),
      key,
    );
    expect((await verifyBundle(replacement, publicKeyPem)).ok).toBe(true);
    const digest = await openArtifactStore(stack.config).put(replacement);
    const [firstLine, secondLine] = original.toString().trim().split('\n');
    writeFileSync(logFile, `${JSON.stringify({ ...JSON.parse(firstLine), proof: digest })}\n${secondLine}\n`);
    const r = await cli(['verify', '--log'], stack.env);
    // The first proof checks out (its progress line says so); the second names the original.
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toBe(
      `#1 ${id} sha256:${digest} ok\nnightshift: proof log broken: proof #2 (run ${second}) names sha256:${sha256(bundle)} before it, but the log has sha256:${digest}: a proof was removed or replaced\n`,
    );
  });

  test('only proofs in the log are served by digest, and not to a token limited to some repos', async () => {
    const state = await stack.state(id);
    const diff = await stack.api('GET', `/v1/proofs/${state.diffId}`);
    expect(diff).toMatchObject({
      status: 404,
      body: { error: { message: `no proof sha256:${state.diffId} in the proof log` } },
    });
    expect((await stack.api('GET', '/v1/proofs/..%2F..%2Fkeys%2Fsigning.key')).status).toBe(400);
    const limited = stack.tokens.create('auditor-limited', 'viewer', ['billing*']);
    for (const route of ['/v1/proofs/log', `/v1/proofs/${sha256(bundle)}`]) {
      expect(await stack.api('GET', route, { token: limited })).toMatchObject({
        status: 403,
        body: {
          error: { message: 'token "auditor-limited" is limited to some repos; the proof log spans every repo' },
        },
      });
    }
  });
});

// Last: it changes the server's key for good.
describe('key rotation', () => {
  let retiredPrivateKey: string;
  let keysJson: string;
  let third: string;
  beforeAll(async () => {
    retiredPrivateKey = readFileSync(path.join(stack.config.home, 'keys', 'signing.key'), 'utf8');
    const r = await cli(['keys', 'rotate'], stack.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^signing with sha256:[0-9a-f]{64} from \\S+; ${keyIdOf(publicKeyPem)} retired \\(it still verifies what it signed\\)\\n$`,
      ),
    );
    third = await succeededRun();
    keysJson = path.join(dir, 'keys.json');
    writeFileSync(keysJson, JSON.stringify((await stack.api('GET', '/v1/keys')).body));
  });

  test('GET /v1/keys lists both keys with their windows; the retired private key is gone from the server', async () => {
    const { keys } = (await stack.api('GET', '/v1/keys')).body;
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatchObject({ keyid: keyIdOf(publicKeyPem), validUntil: expect.any(String) });
    expect(keys[1].validUntil).toBeUndefined();
    expect(keys[1].validFrom).toBe(keys[0].validUntil);
    const found = spawnSync('grep', ['-rlF', retiredPrivateKey.split('\n')[1], stack.config.home], {
      encoding: 'utf8',
    });
    expect({ status: found.status, files: found.stdout }).toEqual({ status: 1, files: '' });
  });

  test('proofs signed before the rotation still verify (nightshift and cosign), the new ones with the new key; the log spans both', async () => {
    const old = await cli(['verify', path.join(dir, `${id}-proof.tar.gz`), '--key', keysJson]);
    expect(old).toMatchObject({ code: 0, stderr: '' });
    expect(old.stdout).toContain(`signed by ${keyIdOf(publicKeyPem)}`);
    const newFile = path.join(dir, 'third.tar.gz');
    expect((await cli(['proof', third, '-o', newFile], stack.env)).code).toBe(0);
    const current = (await stack.api('GET', '/v1/keys')).body.keys[1];
    const fresh = await cli(['verify', newFile, '--key', keysJson]);
    expect(fresh).toMatchObject({ code: 0, stderr: '' });
    expect(fresh.stdout).toContain(`signed by ${current.keyid}`);
    // The old key alone does not vouch for the new proof.
    expect((await cli(['verify', newFile, '--key', path.join(dir, 'server.pub')])).code).toBe(1);
    // cosign: the old proof with the retired key, the new one with the new key, and not crosswise.
    const cosign = await ensureCosign();
    const newDir = tempDir('rotated');
    execFileSync('tar', ['-xzf', newFile, '-C', newDir]);
    writeFileSync(path.join(newDir, 'new.pub'), current.publicKeyPem);
    const oldDir = tempDir('before-rotation');
    execFileSync('tar', ['-xzf', path.join(dir, `${id}-proof.tar.gz`), '-C', oldDir]);
    const check = (proofDir: string, key: string) =>
      cosignVerify(cosign, {
        key,
        type: 'slsaprovenance1',
        signature: path.join(proofDir, 'attestation.json'),
        blob: path.join(proofDir, 'diff.patch'),
      }).code;
    expect([
      check(oldDir, path.join(dir, 'server.pub')),
      check(newDir, path.join(newDir, 'new.pub')),
      check(newDir, path.join(dir, 'server.pub')),
      check(oldDir, path.join(newDir, 'new.pub')),
    ]).toEqual([0, 0, 1, 1]);
    const entries: ProofLogEntry[] = (await stack.api('GET', '/v1/proofs/log')).body.entries;
    expect(entries.at(-1)).toMatchObject({ runId: third });
    const log = await cli(['verify', '--log'], stack.env);
    expect(log).toMatchObject({
      code: 0,
      stdout: `proof log verified: ${entries.length} proofs, each naming the one before it; the latest is sha256:${entries.at(-1)!.proof}\n`,
    });
    // And the decision signed with the retired key still counts as the API's.
    expect((await stack.api('GET', `/v1/runs/${id}`)).body.decisions[0]).toMatchObject({
      kind: 'approve',
      channel: 'api',
      verified: true,
    });
  });

  test('a proof signed with the retired key after its window closed (a stolen old key) is refused', async () => {
    const old = { privateKey: createPrivateKey(retiredPrivateKey), publicKeyPem, keyId: keyIdOf(publicKeyPem) };
    const later = new Date(Date.now() + 60_000).toISOString();
    const forged = await alteredAndResigned(
      bundle,
      'review.md',
      Buffer.from('# Review: approve\n'),
      old,
      (p) => (p.predicate.runDetails.metadata.finishedOn = later),
    );
    const keys = JSON.parse(readFileSync(keysJson, 'utf8')).keys;
    expect(await verifyBundle(forged, keys)).toEqual({
      ok: false,
      problem: `attestation.json: key ${keyIdOf(publicKeyPem)} was not in use at ${later}, when the proof says it was signed`,
    });
    // Nor one that leaves its time out, or gives no date.
    for (const finishedOn of [undefined, 'soon']) {
      const undated = await alteredAndResigned(
        bundle,
        'review.md',
        Buffer.from('# Review: approve\n'),
        old,
        (p) => (p.predicate.runDetails.metadata.finishedOn = finishedOn as unknown as string),
      );
      expect(await verifyBundle(undated, keys)).toMatchObject({
        ok: false,
        problem: expect.stringMatching(/^attestation\.json: key sha256:[0-9a-f]{64} was not in use at /),
      });
    }
  });
});
