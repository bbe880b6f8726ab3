import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ActivityDeps } from '../runtime/deps';
import { git as hostGit } from '../git/git';
import { signActivities } from '../activities/proof/signCommits';
import { ensureSigningKey } from '../proof/keys';
import { signCommitObject } from '../proof/signedCommit';
import { unpackTarGz } from '../proof/tar';
import { withArtifactFile } from '../store/artifacts';
import { openArtifactStore } from '../store/openArtifacts';
import { RunLog } from '../store/runLog';
import type { RunState } from '../contracts/run';
import { runCli } from './helpers/cli';
import { gitIn, makeRepo, startTestStack, tempDir, type TestStack } from './helpers/stack';
import { spec, VALUE_REPO } from './helpers/specs';

// Delivered commits are signed with the server's key (git's SSH signing), checked by the real git and ssh-keygen with
// the allowed_signers file the API serves; `nightshift verify --commit` ties a commit to its run's proof.

/** Two iterations: the first writes 3 (its check fails), the second 2: two commits of the run's own. */
const TWO_ITERATIONS =
  'if [ -f notes/tried ]; then echo 2 > src/value.txt; else echo 3 > src/value.txt; touch notes/tried; fi';

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

function verifyCommit(sha: string, allowed: string, inRepo = repo): { code: number | null; stderr: string } {
  const r = spawnSync('git', ['-C', inRepo, '-c', `gpg.ssh.allowedSignersFile=${allowed}`, 'verify-commit', sha], {
    encoding: 'utf8',
  });
  return { code: r.status, stderr: r.stderr };
}

/** What ssh-keygen calls the key (its SHA256 fingerprint), from `GET /v1/keys`' sshPublicKey. */
function fingerprint(sshPublicKey: string): string {
  const blob = Buffer.from(sshPublicKey.split(' ')[1], 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

const runCommits = (state: RunState) =>
  gitIn(repo, 'rev-list', '--reverse', state.branch, `^${state.baseCommit}`).trim().split('\n');

/** A commit object written into `into` as given; returns its id. */
function writeCommitIn(into: string, object: string): string {
  const file = path.join(dir, 'commit-object');
  writeFileSync(file, object);
  return gitIn(into, 'hash-object', '-t', 'commit', '-w', file).trim();
}
const writeCommit = (object: string) => writeCommitIn(repo, object);

/** The commit object with one character of its signature's last line (the ed25519 signature's bytes) changed. */
function alterSignature(raw: string): string {
  const altered = raw.replace(
    /^ ([A-Za-z0-9+/])(.*\n -----END SSH SIGNATURE-----)$/m,
    (_, c: string, rest: string) => ` ${c === 'A' ? 'B' : 'A'}${rest}`,
  );
  expect(altered).not.toBe(raw);
  return altered;
}

/** The run's proof bundle's files, as the API serves it. */
async function proofOf(id: string): Promise<Map<string, Buffer>> {
  const res = await fetch(`${stack.apiUrl}/v1/runs/${id}/proof`, {
    headers: { authorization: `Bearer ${stack.token}` },
  });
  expect(res.status).toBe(200);
  return unpackTarGz(Buffer.from(await res.arrayBuffer()));
}

const verifyCli = (sha: string) => runCli(['verify', '--commit', repo, sha], stack.env);

test('every commit the run delivered passes git verify-commit with GET /v1/keys/allowed_signers: a good "git" signature by the server’s key', async () => {
  const allowed = await allowedSigners('allowed_signers');
  const [key] = (await stack.api('GET', '/v1/keys')).body.keys;
  expect(readFileSync(allowed, 'utf8')).toBe(
    `nightshift@localhost namespaces="git",valid-after="${key.validFrom.replace(/[-:T]/g, '').replace(/\.\d+/, '')}" ${key.sshPublicKey}\n`,
  );
  const commits = runCommits(run);
  expect(commits).toHaveLength(2);
  expect(commits.at(-1)).toBe(run.finalCommit);
  expect(run.checkpoint).toMatchObject({ commit: run.finalCommit, afterStage: 'proof' });
  for (const sha of commits) {
    expect(gitIn(repo, 'log', '-1', '--format=%B', sha)).toContain(`Nightshift-Run: ${run.id}`);
    const r = verifyCommit(sha, allowed);
    expect({ sha, ...r }).toEqual({
      sha,
      code: 0,
      stderr: `Good "git" signature for nightshift@localhost with ED25519 key ${fingerprint(key.sshPublicKey)}\n`,
    });
  }
  const shown = spawnSync(
    'git',
    [
      '-C',
      repo,
      '-c',
      `gpg.ssh.allowedSignersFile=${allowed}`,
      'log',
      '--show-signature',
      run.branch,
      `^${run.baseCommit}`,
    ],
    { encoding: 'utf8' },
  ).stdout;
  expect(shown.match(/^Good "git" signature for nightshift@localhost with ED25519 key /gm)).toHaveLength(2);
  // The proof names the signed commit, and the run log says what was signed (not with what secret).
  expect(JSON.parse((await proofOf(run.id)).get('manifest.json')!.toString()).finalCommit).toBe(run.finalCommit);
  expect(run.stages.find((s) => s.stage === 'proof')?.summary).toMatch(
    new RegExp(`^signed ${run.finalCommit!.slice(0, 12)} and proof\\.tar\\.gz [0-9a-f]{12}$`),
  );
  expect((await stack.api('GET', `/v1/runs/${run.id}/logs`)).text).toContain(
    `=== sign: 2 commits signed with ${key.keyid}, `,
  );
});

test('the same commit re-signed with another ed25519 key, or with its signature altered, fails git verify-commit', async () => {
  const allowed = await allowedSigners('allowed_signers');
  const raw = gitIn(repo, 'cat-file', 'commit', run.finalCommit!);
  const other = generateKeyPairSync('ed25519');
  const resigned = writeCommit(
    signCommitObject(
      raw,
      { parents: new Map(), committedAt: new Date() },
      {
        privateKey: other.privateKey,
        publicKeyPem: other.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      },
    ),
  );
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
    expect(first.stdout).toContain(
      `is an earlier commit of run ${run.id} (its commits are ${run.baseCommit!.slice(0, 12)}..${run.finalCommit!.slice(0, 12)}); signed by nightshift@localhost`,
    );
  });

  test('a commit without the trailer, or naming two runs: exit 1, one line', async () => {
    expect(await verifyCli(run.baseCommit!)).toEqual({
      code: 1,
      stdout: '',
      stderr: `nightshift: commit ${run.baseCommit!.slice(0, 12)} has no Nightshift-Run trailer: no run claims it\n`,
    });
    const raw = gitIn(repo, 'cat-file', 'commit', run.finalCommit!);
    const two = writeCommit(
      raw.replace(`Nightshift-Run: ${run.id}\n`, `Nightshift-Run: ${run.id}\nNightshift-Run: ns-someone-else\n`),
    );
    expect(await verifyCli(two)).toEqual({
      code: 1,
      stdout: '',
      stderr: `nightshift: commit ${two.slice(0, 12)} names more than one run (Nightshift-Run: ${run.id}, ns-someone-else)\n`,
    });
  });

  test('a commit with its signature altered: exit 1, git’s reason', async () => {
    const raw = gitIn(repo, 'cat-file', 'commit', run.finalCommit!);
    const altered = writeCommit(alterSignature(raw));
    const r = await verifyCli(altered);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^nightshift: commit ${altered.slice(0, 12)}: git verify-commit fails with the server's allowed signers: .*Signature verification failed: incorrect signature\\n$`,
      ),
    );
  });

  test('a commit the server signed for the run, but not the one its proof names (a signing retried, its first result never delivered): exit 1', async () => {
    // Signed again, as a retried activity would: a valid signature on another commit id.
    await new Promise((r) => setTimeout(r, 1100));
    const deps = {
      home: stack.config.home,
      reposDir: stack.config.reposDir,
      self: { worker: 'test', queue: 'test' },
      store: openArtifactStore(stack.config),
      runLog: new RunLog(stack.config.home),
    } as ActivityDeps;
    const again = await signActivities(deps).signCommits({
      runId: run.id,
      repo,
      branch: run.branch,
      baseCommit: run.baseCommit!,
      checkpoint: run.checkpoint!,
    });
    expect(again.commit).not.toBe(run.finalCommit);
    await withArtifactFile(deps.store, again.bundleId!, async (bundle) =>
      gitIn(repo, 'fetch', '--quiet', bundle, `refs/heads/${run.branch}:refs/heads/retried`),
    );
    expect(verifyCommit(again.commit, await allowedSigners('allowed_signers')).code).toBe(0);
    expect(await verifyCli(again.commit)).toEqual({
      code: 1,
      stdout: '',
      stderr: `nightshift: commit ${again.commit.slice(0, 12)} is not run ${run.id}'s: its proof names final commit ${run.finalCommit!.slice(0, 12)}\n`,
    });
    // The delivered commit claimed for another run (its trailer changed): its signature no longer holds.
    const raw = gitIn(repo, 'cat-file', 'commit', run.finalCommit!).replace(
      `Nightshift-Run: ${run.id}`,
      'Nightshift-Run: ns-another-run',
    );
    const claimed = writeCommit(raw);
    expect(await verifyCli(claimed)).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(
        new RegExp(
          `^nightshift: commit ${claimed.slice(0, 12)}: git verify-commit fails with the server's allowed signers: [^\\n]+\\n$`,
        ),
      ),
    });
  });
});

/** A git that signs with OpenPGP from the keyring in `gnupgHome`, as anyone with gpg can. */
function gitWithGpg(cwd: string, gnupgHome: string, args: string[]): string {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GNUPGHOME: gnupgHome } });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * A commit on main by someone else (signed with OpenPGP by their key, `openpgp`): `file` changed, the message naming
 * `runId` in a trailer. Returns the commit's raw object.
 */
function commitOnMain(cwd: string, gnupgHome: string, file: string, runId: string, openpgp = false): string {
  writeFileSync(path.join(cwd, file), `${file}, by someone else\n`);
  const who = [
    '-c',
    'user.name=Someone Else',
    '-c',
    'user.email=someone@localhost',
    '-c',
    'gpg.program=gpg',
    '-c',
    'user.signingKey=someone@localhost',
  ];
  gitWithGpg(cwd, gnupgHome, [...who, 'add', file]);
  gitWithGpg(cwd, gnupgHome, [
    ...who,
    'commit',
    '--quiet',
    ...(openpgp ? ['-S'] : []),
    '-m',
    `Change ${file}\n\nNightshift-Run: ${runId}`,
  ]);
  return gitIn(cwd, 'cat-file', 'commit', 'HEAD');
}

/** Replaces main's tip (the same tree) by the commit object given; returns its id. */
function replaceTip(cwd: string, object: string): string {
  const file = path.join(dir, 'tip-object');
  writeFileSync(file, object);
  const sha = gitIn(cwd, 'hash-object', '-t', 'commit', '-w', file).trim();
  gitIn(cwd, 'update-ref', 'refs/heads/main', sha);
  return sha;
}

/**
 * A signature program a repository's config names: it notes that it ran, and tells git the signature is good, as
 * gpg's status lines would.
 */
function hostileProgram(marker: string): string {
  const file = path.join(dir, 'hostile-gpg');
  writeFileSync(
    file,
    `#!/bin/sh\necho ran >> ${marker}\ncat >/dev/null\necho '[GNUPG:] NEWSIG'\necho '[GNUPG:] GOODSIG 0123456789ABCDEF Nightshift <nightshift@localhost>'\n` +
      `echo '[GNUPG:] VALIDSIG 0123456789ABCDEF0123456789ABCDEF01234567 2026-01-01 0 4 0 22 10 00 0123456789ABCDEF0123456789ABCDEF01234567'\necho '[GNUPG:] TRUST_ULTIMATE 0 pgp'\n`,
    { mode: 0o755 },
  );
  return file;
}

describe('verify --commit vouches only for the run’s own commits, signed with the server’s SSH key', () => {
  let delivered: string;
  let gnupgHome: string;
  let rebased: RunState;
  /** Put on main by someone else while the run waited for approval, all naming the run in a trailer. */
  const onBase = { serverSigned: '', openpgp: '', x509: '' };

  beforeAll(async () => {
    delivered = makeRepo(VALUE_REPO);
    gnupgHome = tempDir('gnupg');
    const gpg = spawnSync(
      'gpg',
      [
        '--batch',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        '',
        '--quick-gen-key',
        'Someone Else <someone@localhost>',
        'ed25519',
        'sign',
        'never',
      ],
      { env: { ...process.env, GNUPGHOME: gnupgHome }, encoding: 'utf8' },
    );
    if (gpg.status !== 0) throw new Error(`gpg --quick-gen-key: ${gpg.stderr}`);
    const id = await stack.submit(spec(delivered, 'echo 2 > src/value.txt', { branch: 'nightshift/attribution' }));
    await stack.waitFor(id, ['awaiting_approval']);
    // Signed with the server's key and naming the run, as a commit the server signed for it but never delivered (a
    // retried signing's first result) would be; then one signed with OpenPGP by a key the verifier's gpg trusts, then
    // one with an X.509 signature no gpgsm would accept.
    const key = ensureSigningKey(stack.config.home);
    onBase.serverSigned = replaceTip(
      delivered,
      signCommitObject(
        commitOnMain(delivered, gnupgHome, 'NOTES.md', id),
        { parents: new Map(), committedAt: new Date() },
        key,
      ),
    );
    commitOnMain(delivered, gnupgHome, 'CHANGES.md', id, true);
    onBase.openpgp = gitIn(delivered, 'rev-parse', 'HEAD').trim();
    const x509 = commitOnMain(delivered, gnupgHome, 'AUTHORS', id).replace(
      /\ncommitter [^\n]+\n/,
      (c) =>
        `${c}gpgsig -----BEGIN SIGNED MESSAGE-----\n MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCA\n -----END SIGNED MESSAGE-----\n`,
    );
    onBase.x509 = replaceTip(delivered, x509);
    expect((await stack.api('POST', `/v1/runs/${id}/approve`, { body: { comment: 'ok' } })).status).toBe(202);
    rebased = await stack.waitFor(id, ['succeeded']);
  });
  afterAll(() => {
    spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: gnupgHome } });
  });

  const verifyIn = (sha: string, env: Record<string, string> = {}) =>
    runCli(['verify', '--commit', delivered, sha], { ...stack.env, GNUPGHOME: gnupgHome, ...env });
  const ancestorOfFinal = (sha: string) =>
    spawnSync('git', ['-C', delivered, 'merge-base', '--is-ancestor', sha, rebased.finalCommit!]).status === 0;

  test('a commit someone else put on the base while the run waited, signed with the server’s key and naming the run: refused, as under the run’s base', async () => {
    // The run was rebased onto them: each is an ancestor of its final commit, the last one its base.
    expect(rebased.baseCommit).toBe(onBase.x509);
    for (const sha of Object.values(onBase)) expect(ancestorOfFinal(sha)).toBe(true);
    expect(verifyCommit(onBase.serverSigned, await allowedSigners('allowed_signers'), delivered)).toMatchObject({
      code: 0,
      stderr: expect.stringMatching(/^Good "git" signature for nightshift@localhost/),
    });
    const r = await verifyIn(onBase.serverSigned);
    const range = `${rebased.baseCommit!.slice(0, 12)}..${rebased.finalCommit!.slice(0, 12)}`;
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `nightshift: commit ${onBase.serverSigned.slice(0, 12)} is not run ${rebased.id}'s: it is under the run's base commit ${rebased.baseCommit!.slice(0, 12)}, the commit its changes stand on; the run's commits are ${range}\n`,
    });
    // The run's own commit: still its final commit.
    expect(await verifyIn(rebased.finalCommit!)).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        new RegExp(
          `^verified: commit ${rebased.finalCommit!.slice(0, 12)} is run ${rebased.id}'s final commit; signed by nightshift@localhost`,
        ),
      ),
    });
  });

  test('a commit signed with OpenPGP by a key in the verifier’s keyring: git verify-commit with allowed_signers accepts it, verify --commit refuses it', async () => {
    const allowed = await allowedSigners('allowed_signers');
    // What allowed_signers cannot stop: git hands an OpenPGP signature to gpg, which trusts its own keyring.
    const naive = spawnSync(
      'git',
      ['-C', delivered, '-c', `gpg.ssh.allowedSignersFile=${allowed}`, 'verify-commit', onBase.openpgp],
      { encoding: 'utf8', env: { ...process.env, GNUPGHOME: gnupgHome } },
    );
    expect({ code: naive.status, stderr: naive.stderr }).toMatchObject({
      code: 0,
      stderr: expect.stringContaining('Good signature from "Someone Else <someone@localhost>"'),
    });
    // docs/proof.md's recipe: the header check shows an OpenPGP signature, and its verify-commit refuses it.
    const sh = (script: string) =>
      spawnSync('sh', ['-c', script, 'sh', onBase.openpgp, allowed], {
        cwd: delivered,
        encoding: 'utf8',
        env: { ...process.env, GNUPGHOME: gnupgHome, GIT_NO_REPLACE_OBJECTS: '1' },
      });
    expect(sh(`git cat-file commit "$1" | sed '/^$/q' | grep -e '^gpgsig' -e '-----BEGIN'`).stdout).toBe(
      'gpgsig -----BEGIN PGP SIGNATURE-----\n',
    );
    const pinned = sh(
      'git -c gpg.format=ssh -c gpg.ssh.program=ssh-keygen -c gpg.program=false -c gpg.openpgp.program=false -c gpg.x509.program=false -c log.showSignature=false -c gpg.ssh.allowedSignersFile="$2" verify-commit "$1"',
    );
    expect({ code: pinned.status, stderr: pinned.stderr }).toMatchObject({
      code: 1,
      stderr: expect.not.stringContaining('Good signature'),
    });
    expect(await verifyIn(onBase.openpgp)).toEqual({
      code: 1,
      stdout: '',
      stderr: `nightshift: commit ${onBase.openpgp.slice(0, 12)} is not signed by the server: its gpgsig header holds an OpenPGP signature, not one SSH signature (only an SSH signature by the server's key counts)\n`,
    });
  });

  test('a commit of the run re-signed with another SSH key: refused, no principal matched', async () => {
    const other = generateKeyPairSync('ed25519');
    const raw = gitIn(delivered, 'cat-file', 'commit', rebased.finalCommit!);
    const resigned = writeCommitIn(
      delivered,
      signCommitObject(
        raw,
        { parents: new Map(), committedAt: new Date() },
        {
          privateKey: other.privateKey,
          publicKeyPem: other.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        },
      ),
    );
    expect(await verifyIn(resigned)).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(
        new RegExp(
          `^nightshift: commit ${resigned.slice(0, 12)}: git verify-commit fails with the server's allowed signers: .*No principal matched\\.\\n$`,
        ),
      ),
    });
  });

  test('a repo whose config names its own signature programs, and replaces a commit: neither verify --commit nor the host’s git runs them', async () => {
    const marker = path.join(dir, 'hostile-ran');
    const hostile = hostileProgram(marker);
    for (const name of ['gpg.program', 'gpg.openpgp.program', 'gpg.x509.program', 'gpg.ssh.program'])
      gitIn(delivered, 'config', name, hostile);
    gitIn(delivered, 'config', 'log.showSignature', 'true');
    // An unsigned commit naming the run, which a refs/replace/ ref swaps for the run's signed final commit.
    const swapped = writeCommitIn(
      delivered,
      gitIn(delivered, 'cat-file', 'commit', rebased.finalCommit!)
        .replace(/\ngpgsig [^]*?-----END SSH SIGNATURE-----\n/, '\n')
        .replace('\n\n', '\n\nSomething else entirely\n\n'),
    );
    gitIn(delivered, 'replace', swapped, rebased.finalCommit!);
    try {
      expect(await verifyIn(onBase.x509)).toMatchObject({
        code: 1,
        stderr: expect.stringContaining(
          `commit ${onBase.x509.slice(0, 12)} is not signed by the server: its gpgsig header holds an X.509 signature, not one SSH signature`,
        ),
      });
      expect(await verifyIn(onBase.openpgp)).toMatchObject({
        code: 1,
        stderr: expect.stringContaining('holds an OpenPGP signature'),
      });
      expect(await verifyIn(swapped)).toEqual({
        code: 1,
        stdout: '',
        stderr: `nightshift: commit ${swapped.slice(0, 12)} is not signed by the server: it is not signed (only an SSH signature by the server's key counts)\n`,
      });
      expect(await verifyIn(rebased.finalCommit!)).toMatchObject({
        code: 0,
        stdout: expect.stringContaining(`is run ${rebased.id}'s final commit; signed by nightshift@localhost`),
      });
      // The host's git (git/git.ts) in the same repo.
      await expect(hostGit(delivered, ['verify-commit', onBase.openpgp])).rejects.toThrow(/verify-commit/);
      await expect(hostGit(delivered, ['verify-commit', onBase.x509])).rejects.toThrow(/verify-commit/);
      await hostGit(delivered, ['log', '--format=%H', '-5', 'main']);
      expect(existsSync(marker) ? readFileSync(marker, 'utf8') : 'never ran').toBe('never ran');
    } finally {
      gitIn(delivered, 'replace', '-d', swapped);
      for (const name of [
        'gpg.program',
        'gpg.openpgp.program',
        'gpg.x509.program',
        'gpg.ssh.program',
        'log.showSignature',
      ])
        gitIn(delivered, 'config', '--unset', name);
    }
  });
});

test('after POST /v1/keys/rotate: the earlier commit still verifies, a new run’s commit is signed with the new key', async () => {
  const before = await allowedSigners('allowed_signers.before');
  expect((await stack.api('POST', '/v1/keys/rotate')).status).toBe(201);
  const after = await allowedSigners('allowed_signers.after');
  const [retired, current] = (await stack.api('GET', '/v1/keys')).body.keys;
  expect(readFileSync(after, 'utf8').trim().split('\n')).toHaveLength(2);
  expect(verifyCommit(run.finalCommit!, after)).toEqual({
    code: 0,
    stderr: `Good "git" signature for nightshift@localhost with ED25519 key ${fingerprint(retired.sshPublicKey)}\n`,
  });
  expect((await verifyCli(run.finalCommit!)).code).toBe(0);

  const id = await stack.submit(
    spec(repo, 'echo 2 > src/value.txt', { approval: { required: false }, branch: 'nightshift/after-rotation' }),
  );
  const next = await stack.waitFor(id, ['succeeded']);
  expect(verifyCommit(next.finalCommit!, after)).toEqual({
    code: 0,
    stderr: `Good "git" signature for nightshift@localhost with ED25519 key ${fingerprint(current.sshPublicKey)}\n`,
  });
  // The file from before the rotation does not know the new key.
  expect(verifyCommit(next.finalCommit!, before)).toMatchObject({
    code: 1,
    stderr: expect.stringContaining('No principal matched'),
  });
  const r = await verifyCli(next.finalCommit!);
  expect(r).toMatchObject({
    code: 0,
    stdout: expect.stringContaining(
      `is run ${id}'s final commit; signed by nightshift@localhost (ED25519 key ${fingerprint(current.sshPublicKey)}); its proof is signed by ${current.keyid}`,
    ),
  });
});

test('the private keys appear nowhere: not in the artifact store, a proof, a run log or the run’s history', async () => {
  const secrets = [firstKeyPem, readFileSync(path.join(stack.config.home, 'keys', 'signing.key'), 'utf8')].flatMap(
    (pem) => {
      const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
      const seed = Buffer.from(createPrivateKey(pem).export({ format: 'jwk' }).d!, 'base64url');
      return [
        pem.split('\n')[1],
        der.toString('base64'),
        seed.toString('base64'),
        seed.toString('base64url'),
        seed.toString('hex'),
      ];
    },
  );
  // This file's runs (the Temporal server is shared with other test files).
  const runs = ((await stack.api('GET', '/v1/runs?limit=100')).body.runs as { id: string; repo: string }[]).filter(
    (r) => r.repo === repo,
  );
  expect(runs).toHaveLength(2);
  const places: [string, string][] = [];
  if (stack.config.artifacts.driver !== 'fs') throw new Error('the test stack stores artifacts in a directory');
  for (const name of readdirSync(stack.config.artifacts.dir, { recursive: true, encoding: 'utf8' })) {
    const file = path.join(stack.config.artifacts.dir, name);
    if (spawnSync('test', ['-f', file]).status === 0)
      places.push([`artifact ${name}`, readFileSync(file).toString('latin1')]);
  }
  for (const { id } of runs) {
    for (const [name, content] of await proofOf(id)) places.push([`${id} proof ${name}`, content.toString('latin1')]);
    places.push([`${id} run log`, (await stack.api('GET', `/v1/runs/${id}/logs`)).text]);
    places.push([`${id} history`, JSON.stringify(await stack.client.workflow.getHandle(id).fetchHistory())]);
    places.push([`${id} state`, JSON.stringify(await stack.state(id))]);
  }
  expect(places.length).toBeGreaterThan(10);
  for (const [where, content] of places)
    for (const secret of secrets) expect({ where, leaked: content.includes(secret) }).toEqual({ where, leaked: false });
});
