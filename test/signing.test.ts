import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ActivityDeps } from '../activities/deps';
import { signActivities } from '../activities/sign';
import { signCommitObject } from '../proof/signedCommit';
import { unpackTarGz } from '../proof/tar';
import { withArtifactFile } from '../store/artifacts';
import { openArtifactStore } from '../store/openArtifacts';
import { RunLog } from '../store/runLog';
import type { RunState } from '../workflows/types';
import { runCli } from './helpers/cli';
import { gitIn, makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// Delivered commits are signed with the server's key (git's SSH signing), checked by the real git and ssh-keygen with
// the allowed_signers file the API serves; `nightshift verify --commit` ties a commit to its run's proof.

/** Two iterations: the first writes 3 (its check fails), the second 2: two commits of the run's own. */
const TWO_ITERATIONS = 'if [ -f notes/tried ]; then echo 2 > src/value.txt; else echo 3 > src/value.txt; touch notes/tried; fi';

let stack: TestStack;
let dir: string;
let repo: string;
let run: RunState;
/** The key the first run was signed with, as the server keeps it (deleted from disk by the rotation below). */
let firstKeyPem: string;

beforeAll(async () => {
  stack = await startTestStack();
  dir = tempDir('signing');
  repo = makeRepo(VALUE_REPO);
  const id = await stack.submit(spec(repo, TWO_ITERATIONS, { approval: { required: false } }));
  run = await stack.waitFor(id, ['succeeded']);
  firstKeyPem = readFileSync(path.join(stack.config.home, 'keys', 'signing.key'), 'utf8');
});
afterAll(async () => {
  await stack?.stop();
});

/** GET /v1/keys/allowed_signers, as a file for git. */
async function allowedSigners(name: string): Promise<string> {
  const res = await stack.api('GET', '/v1/keys/allowed_signers');
  expect(res.status).toBe(200);
  const file = path.join(dir, name);
  writeFileSync(file, res.text);
  return file;
}

function verifyCommit(sha: string, allowed: string): { code: number | null; stderr: string } {
  const r = spawnSync('git', ['-C', repo, '-c', `gpg.ssh.allowedSignersFile=${allowed}`, 'verify-commit', sha], { encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr };
}

/** What ssh-keygen calls the key (its SHA256 fingerprint), from `GET /v1/keys`' sshPublicKey. */
function fingerprint(sshPublicKey: string): string {
  const blob = Buffer.from(sshPublicKey.split(' ')[1], 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

const runCommits = (state: RunState) => gitIn(repo, 'rev-list', '--reverse', state.branch, `^${state.baseCommit}`).trim().split('\n');

/** A commit object written into the repo as given; returns its id. */
function writeCommit(object: string): string {
  const file = path.join(dir, 'commit-object');
  writeFileSync(file, object);
  return gitIn(repo, 'hash-object', '-t', 'commit', '-w', file).trim();
}

/** The commit object with one character of its signature's last line (the ed25519 signature's bytes) changed. */
function alterSignature(raw: string): string {
  const altered = raw.replace(/^ ([A-Za-z0-9+/])(.*\n -----END SSH SIGNATURE-----)$/m, (_, c: string, rest: string) => ` ${c === 'A' ? 'B' : 'A'}${rest}`);
  expect(altered).not.toBe(raw);
  return altered;
}

/** The run's proof bundle's files, as the API serves it. */
async function proofOf(id: string): Promise<Map<string, Buffer>> {
  const res = await fetch(`${stack.apiUrl}/v1/runs/${id}/proof`, { headers: { authorization: `Bearer ${stack.token}` } });
  expect(res.status).toBe(200);
  return unpackTarGz(Buffer.from(await res.arrayBuffer()));
}

const verifyCli = (sha: string) => runCli(['verify', '--commit', repo, sha], stack.env);

test('every commit the run delivered passes git verify-commit with GET /v1/keys/allowed_signers: a good "git" signature by the server’s key', async () => {
  const allowed = await allowedSigners('allowed_signers');
  const [key] = (await stack.api('GET', '/v1/keys')).body.keys;
  expect(readFileSync(allowed, 'utf8')).toBe(`nightshift@localhost namespaces="git",valid-after="${key.validFrom.replace(/[-:T]/g, '').replace(/\.\d+/, '')}" ${key.sshPublicKey}\n`);
  const commits = runCommits(run);
  expect(commits).toHaveLength(2);
  expect(commits.at(-1)).toBe(run.finalCommit);
  expect(run.checkpoint).toMatchObject({ commit: run.finalCommit, afterStage: 'proof' });
  for (const sha of commits) {
    expect(gitIn(repo, 'log', '-1', '--format=%B', sha)).toContain(`Nightshift-Run: ${run.id}`);
    const r = verifyCommit(sha, allowed);
    expect({ sha, ...r }).toEqual({ sha, code: 0, stderr: `Good "git" signature for nightshift@localhost with ED25519 key ${fingerprint(key.sshPublicKey)}\n` });
  }
  const shown = spawnSync('git', ['-C', repo, '-c', `gpg.ssh.allowedSignersFile=${allowed}`, 'log', '--show-signature', run.branch, `^${run.baseCommit}`], { encoding: 'utf8' }).stdout;
  expect(shown.match(/^Good "git" signature for nightshift@localhost with ED25519 key /gm)).toHaveLength(2);
  // The proof names the signed commit, and the run log says what was signed (not with what secret).
  expect(JSON.parse((await proofOf(run.id)).get('manifest.json')!.toString()).finalCommit).toBe(run.finalCommit);
  expect(run.stages.find((s) => s.stage === 'proof')?.summary).toMatch(new RegExp(`^signed ${run.finalCommit!.slice(0, 12)} and proof\\.tar\\.gz [0-9a-f]{12}$`));
  expect((await stack.api('GET', `/v1/runs/${run.id}/logs`)).text).toContain(`=== sign: 2 commits signed with ${key.keyid}, `);
});

test('the same commit re-signed with another ed25519 key, or with its signature altered, fails git verify-commit', async () => {
  const allowed = await allowedSigners('allowed_signers');
  const raw = gitIn(repo, 'cat-file', 'commit', run.finalCommit!);
  const other = generateKeyPairSync('ed25519');
  const resigned = writeCommit(signCommitObject(raw, { parents: new Map(), committedAt: new Date() }, { privateKey: other.privateKey, publicKeyPem: other.publicKey.export({ type: 'spki', format: 'pem' }).toString() }));
  const r = verifyCommit(resigned, allowed);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/^Good "git" signature with ED25519 key SHA256:\S+\nNo principal matched\.\n$/);
  // The server's own signature with one character of it changed.
  const altered = writeCommit(alterSignature(raw));
  const a = verifyCommit(altered, allowed);
  expect(a.code).not.toBe(0);
  expect(a.stderr).toMatch(/incorrect signature/);
});

describe('nightshift verify --commit REPO SHA', () => {
  test("the delivered commit: exit 0, the run's final commit, its signer and its proof's key named", async () => {
    const [key] = (await stack.api('GET', '/v1/keys')).body.keys;
    const r = await verifyCli(run.branch);
    expect(r).toEqual({
      code: 0,
      stdout: `verified: commit ${run.finalCommit!.slice(0, 12)} is run ${run.id}'s final commit; signed by nightshift@localhost (ED25519 key ${fingerprint(key.sshPublicKey)}); its proof is signed by ${key.keyid}\n`,
      stderr: '',
    });
    // The run's first commit: an earlier one of the same run.
    const first = await verifyCli(runCommits(run)[0]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`is an earlier commit of run ${run.id} (its final commit is ${run.finalCommit!.slice(0, 12)}); signed by nightshift@localhost`);
  });

  test('a commit without the trailer, or naming two runs: exit 1, one line', async () => {
    expect(await verifyCli(run.baseCommit!)).toEqual({ code: 1, stdout: '', stderr: `nightshift: commit ${run.baseCommit!.slice(0, 12)} has no Nightshift-Run trailer: no run claims it\n` });
    const raw = gitIn(repo, 'cat-file', 'commit', run.finalCommit!);
    const two = writeCommit(raw.replace(`Nightshift-Run: ${run.id}\n`, `Nightshift-Run: ${run.id}\nNightshift-Run: ns-someone-else\n`));
    expect(await verifyCli(two)).toEqual({ code: 1, stdout: '', stderr: `nightshift: commit ${two.slice(0, 12)} names more than one run (Nightshift-Run: ${run.id}, ns-someone-else)\n` });
  });

  test('a commit with its signature altered: exit 1, git’s reason', async () => {
    const raw = gitIn(repo, 'cat-file', 'commit', run.finalCommit!);
    const altered = writeCommit(alterSignature(raw));
    const r = await verifyCli(altered);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^nightshift: commit ${altered.slice(0, 12)}: git verify-commit fails with the server's allowed signers: .*Signature verification failed: incorrect signature\\n$`));
  });

  test('a commit the server signed for the run, but not the one its proof names (a signing retried, its first result never delivered): exit 1', async () => {
    // Signed again, as a retried activity would: a valid signature on another commit id.
    await new Promise((r) => setTimeout(r, 1100));
    const deps = { home: stack.config.home, reposDir: stack.config.reposDir, self: { worker: 'test', queue: 'test' }, store: openArtifactStore(stack.config), runLog: new RunLog(stack.config.home) } as ActivityDeps;
    const again = await signActivities(deps).signCommits({ runId: run.id, repo, branch: run.branch, baseCommit: run.baseCommit!, checkpoint: run.checkpoint! });
    expect(again.commit).not.toBe(run.finalCommit);
    await withArtifactFile(deps.store, again.bundleId!, async (bundle) => gitIn(repo, 'fetch', '--quiet', bundle, `refs/heads/${run.branch}:refs/heads/retried`));
    expect(verifyCommit(again.commit, await allowedSigners('allowed_signers')).code).toBe(0);
    expect(await verifyCli(again.commit)).toEqual({ code: 1, stdout: '', stderr: `nightshift: commit ${again.commit.slice(0, 12)} is not run ${run.id}'s: its proof names final commit ${run.finalCommit!.slice(0, 12)}\n` });
    // The delivered commit claimed for another run (its trailer changed): its signature no longer holds.
    const raw = gitIn(repo, 'cat-file', 'commit', run.finalCommit!).replace(`Nightshift-Run: ${run.id}`, 'Nightshift-Run: ns-another-run');
    const claimed = writeCommit(raw);
    expect(await verifyCli(claimed)).toMatchObject({ code: 1, stderr: expect.stringMatching(new RegExp(`^nightshift: commit ${claimed.slice(0, 12)}: git verify-commit fails with the server's allowed signers: [^\\n]+\\n$`)) });
  });
});

test('after POST /v1/keys/rotate: the earlier commit still verifies, a new run’s commit is signed with the new key', async () => {
  const before = await allowedSigners('allowed_signers.before');
  expect((await stack.api('POST', '/v1/keys/rotate')).status).toBe(201);
  const after = await allowedSigners('allowed_signers.after');
  const [retired, current] = (await stack.api('GET', '/v1/keys')).body.keys;
  expect(readFileSync(after, 'utf8').trim().split('\n')).toHaveLength(2);
  expect(verifyCommit(run.finalCommit!, after)).toEqual({ code: 0, stderr: `Good "git" signature for nightshift@localhost with ED25519 key ${fingerprint(retired.sshPublicKey)}\n` });
  expect((await verifyCli(run.finalCommit!)).code).toBe(0);

  const id = await stack.submit(spec(repo, 'echo 2 > src/value.txt', { approval: { required: false }, branch: 'nightshift/after-rotation' }));
  const next = await stack.waitFor(id, ['succeeded']);
  expect(verifyCommit(next.finalCommit!, after)).toEqual({ code: 0, stderr: `Good "git" signature for nightshift@localhost with ED25519 key ${fingerprint(current.sshPublicKey)}\n` });
  // The file from before the rotation does not know the new key.
  expect(verifyCommit(next.finalCommit!, before)).toMatchObject({ code: 1, stderr: expect.stringContaining('No principal matched') });
  const r = await verifyCli(next.finalCommit!);
  expect(r).toMatchObject({ code: 0, stdout: expect.stringContaining(`is run ${id}'s final commit; signed by nightshift@localhost (ED25519 key ${fingerprint(current.sshPublicKey)}); its proof is signed by ${current.keyid}`) });
});

test('the private keys appear nowhere: not in the artifact store, a proof, a run log or the run’s history', async () => {
  const secrets = [firstKeyPem, readFileSync(path.join(stack.config.home, 'keys', 'signing.key'), 'utf8')].flatMap((pem) => {
    const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
    const seed = Buffer.from(createPrivateKey(pem).export({ format: 'jwk' }).d!, 'base64url');
    return [pem.split('\n')[1], der.toString('base64'), seed.toString('base64'), seed.toString('base64url'), seed.toString('hex')];
  });
  // This file's runs (the Temporal server is shared with other test files).
  const runs = ((await stack.api('GET', '/v1/runs?limit=100')).body.runs as { id: string; repo: string }[]).filter((r) => r.repo === repo);
  expect(runs).toHaveLength(2);
  const places: [string, string][] = [];
  if (stack.config.artifacts.driver !== 'fs') throw new Error('the test stack stores artifacts in a directory');
  for (const name of readdirSync(stack.config.artifacts.dir, { recursive: true, encoding: 'utf8' })) {
    const file = path.join(stack.config.artifacts.dir, name);
    if (spawnSync('test', ['-f', file]).status === 0) places.push([`artifact ${name}`, readFileSync(file).toString('latin1')]);
  }
  for (const { id } of runs) {
    for (const [name, content] of await proofOf(id)) places.push([`${id} proof ${name}`, content.toString('latin1')]);
    places.push([`${id} run log`, (await stack.api('GET', `/v1/runs/${id}/logs`)).text]);
    places.push([`${id} history`, JSON.stringify(await stack.client.workflow.getHandle(id).fetchHistory())]);
    places.push([`${id} state`, JSON.stringify(await stack.state(id))]);
  }
  expect(places.length).toBeGreaterThan(10);
  for (const [where, content] of places) for (const secret of secrets) expect({ where, leaked: content.includes(secret) }).toEqual({ where, leaked: false });
});
