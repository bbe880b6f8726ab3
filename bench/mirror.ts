// `npm run bench:mirror`: provision of a run's workspace from a registered remote with a long history (20,000 commits,
// made with git fast-import), served over smart HTTP by `git http-backend` with a credential: cold (no mirror on the
// worker: a full clone) against warm (the mirror there, one new commit upstream: a fetch of what changed), each
// followed by what provision does next (the run's git directory from the mirror, the workspace laid out). Prints
// numbers only; the issue's target is warm ≥ 10× faster than cold.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { RemoteRepos } from '../config/remotes';
import { RunRepo } from '../git/git';
import { layOutOver, workerDir } from '../workspaces/sandboxes';
import { unmountUnder } from '../sandbox/overlay';
import { mirrorDir, withRepoSource, type MirrorDeps } from '../git/mirror';
import { SecretStore } from '../secrets/secretStore';
import { startGitHttp, type Link } from '../testbed/gitHttp';
import { elapsedMs, percentiles } from './stats';

const COMMITS = Number(process.env.BENCH_MIRROR_COMMITS || 20_000);
const RUNS = Number(process.env.BENCH_MIRROR_RUNS || 5);
const FILES = 300;
const BLOB_BYTES = Number(process.env.BENCH_MIRROR_BLOB_BYTES || 1500);
const CREDENTIAL = 'bench-token';

/** A bare repo with `commits` commits on main, each changing one of FILES files: one fast-import stream. */
async function longHistory(bare: string, commits: number): Promise<void> {
  execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', bare]);
  const child = spawn('git', ['--git-dir', bare, 'fast-import', '--quiet'], { stdio: ['pipe', 'inherit', 'inherit'] });
  const done = new Promise<void>((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`fast-import exited ${code}`)))),
  );
  const data = (text: string) => `data ${Buffer.byteLength(text)}\n${text}\n`;
  let chunk = '';
  for (let i = 0; i < commits; i++) {
    const when = 1_600_000_000 + i * 60;
    // Source-sized blobs that do not compress away (a repo of 200 bytes per change clones in no time from anywhere).
    chunk += `blob\nmark :${i + 1}\n${data(`file ${i % FILES}, version ${i}\n${randomBytes(BLOB_BYTES).toString('base64')}\n`)}`;
    chunk += `commit refs/heads/main\ncommitter Bench <bench@localhost> ${when} +0000\n${data(`commit ${i}`)}`;
    chunk += `M 100644 :${i + 1} src/dir${i % 10}/file${i % FILES}.txt\n\n`;
    if (chunk.length > 1 << 20 || i === commits - 1) {
      if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
      chunk = '';
    }
  }
  child.stdin.end();
  await done;
  // As a forge keeps it: one pack, with deltas and a bitmap.
  execFileSync('git', ['--git-dir', bare, 'repack', '-a', '-d', '--quiet']);
}

/**
 * The networks measured: loopback (none), and a link like a forge on the internet's (BENCH_MIRROR_LINK=MBIT,RTT_MS).
 */
function networks(): { name: string; link?: Link }[] {
  const [mbit, rtt] = (process.env.BENCH_MIRROR_LINK || '100,20').split(',').map(Number);
  return [
    { name: 'loopback' },
    {
      name: `a ${mbit} Mbit/s link, ${rtt} ms round trip (the bench's server paces its answers)`,
      link: { bytesPerSecond: (mbit * 1e6) / 8, rttMs: rtt },
    },
  ];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-bench-mirror-'));
  try {
    const root = path.join(dir, 'served');
    const bare = path.join(root, 'big.git');
    const t = process.hrtime.bigint();
    await longHistory(bare, COMMITS);
    const packBytes =
      Number(
        /size-pack: (\d+)/.exec(
          execFileSync('git', ['--git-dir', bare, 'count-objects', '-v'], { encoding: 'utf8' }),
        )?.[1] ?? 0,
      ) * 1024;
    console.log(
      `made ${COMMITS} commits with fast-import in ${(elapsedMs(t) / 1000).toFixed(1)} s: a ${(packBytes / 1e6).toFixed(1)} MB pack, served over smart HTTP; ${RUNS} runs each`,
    );
    for (const network of networks()) await measure(dir, bare, network);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Cold and warm provisions of the repo served over `network`, printed. */
async function measure(dir: string, bare: string, network: { name: string; link?: Link }): Promise<void> {
  const server = await startGitHttp(path.dirname(bare), {
    authorization: `Basic ${Buffer.from(`x-access-token:${CREDENTIAL}`).toString('base64')}`,
    port: Number(process.env.BENCH_MIRROR_PORT || 0),
    link: network.link,
  });
  try {
    const home = path.join(dir, `home-${randomBytes(4).toString('hex')}`);
    writeFileSync(path.join(dir, 'secrets.env'), `BENCH_TOKEN=${CREDENTIAL}\n`);
    new RemoteRepos(home).add({ name: 'big', url: `${server.url}/big.git`, credential: 'BENCH_TOKEN' });
    const deps: MirrorDeps & { reposDir: string } = {
      home,
      reposDir: path.join(dir, 'repos'),
      self: { worker: 'bench', queue: 'bench' },
      secrets: new SecretStore([], path.join(dir, 'secrets.env'), {}),
      runLog: { append: async () => undefined } as unknown as MirrorDeps['runLog'],
    };
    /**
     * [the run's git directory from the mirror (fetch included), the whole provision (workspace and agent's .git laid
     * out)]
     */
    const provision = async (i: number): Promise<[number, number]> => {
      const runRoot = path.join(dir, 'runs', `run-${i}`);
      const repo = new RunRepo(runRoot, path.join(runRoot, 'workspace'));
      mkdirSync(repo.workTree, { recursive: true });
      const started = process.hrtime.bigint();
      await withRepoSource(deps, 'big', undefined, (source) => repo.cloneFrom(source.path, { hardlinks: true }));
      const gitDir = elapsedMs(started);
      const tip = await repo.commitOf('refs/heads/main');
      await layOutOver(deps, repo, 'bwrap', `nightshift/bench-${i}`, tip, tip);
      const whole = elapsedMs(started);
      // Kept until the end: deleting a run's files between provisions would have the disk discarding them (this
      // machine's ext4 mounts with `discard`) while the next one writes, which is the bench measuring itself.
      return [gitDir, whole];
    };
    const cold: [number, number][] = [];
    const warm: [number, number][] = [];
    for (let i = 0; i < RUNS; i++) {
      // A worker new to the repo: no mirror, no kept checkout.
      rmSync(mirrorDir(home, 'bench', 'big'), { recursive: true, force: true });
      rmSync(path.join(workerDir(home, 'bench'), '.checkouts'), { recursive: true, force: true });
      cold.push(await provision(i));
    }
    for (let i = 0; i < RUNS; i++) {
      // One new commit upstream, as between two runs.
      const tip = execFileSync(
        'git',
        ['--git-dir', bare, 'commit-tree', '-p', 'main', '-m', `upstream ${i}`, 'main^{tree}'],
        {
          env: {
            ...process.env,
            GIT_AUTHOR_NAME: 'B',
            GIT_AUTHOR_EMAIL: 'b@l',
            GIT_COMMITTER_NAME: 'B',
            GIT_COMMITTER_EMAIL: 'b@l',
          },
          encoding: 'utf8',
        },
      ).trim();
      execFileSync('git', ['--git-dir', bare, 'update-ref', 'refs/heads/main', tip]);
      warm.push(await provision(RUNS + i));
    }
    const p50 = (rows: [number, number][], pick: (r: [number, number]) => number) => percentiles(rows.map(pick)).p50;
    const [coldGit, warmGit] = [p50(cold, (r) => r[0]), p50(warm, (r) => r[0])];
    const [coldAll, warmAll] = [p50(cold, (r) => r[1]), p50(warm, (r) => r[1])];
    console.log(`over ${network.name}:`);
    console.log(
      `the repo, as provision gets it (the mirror's part: a clone cold, a fetch of what changed warm, then the run's git directory):`,
    );
    console.log(`  cold (no mirror)                 p50 ${coldGit.toFixed(0)} ms`);
    console.log(`  warm (mirror, 1 commit upstream) p50 ${warmGit.toFixed(0)} ms`);
    console.log(`  cold / warm ${(coldGit / warmGit).toFixed(1)}× (target ≥ 10×)`);
    // Cold writes the files (about a millisecond each on this disk) into a checkout it keeps; warm lays an overlay on
    // it.
    console.log(
      `then the workspace laid out (${FILES} files, the agent's .git): cold p50 ${p50(cold, (r) => r[1] - r[0]).toFixed(0)} ms (a checkout written and kept), warm p50 ${p50(warm, (r) => r[1] - r[0]).toFixed(0)} ms (over the kept checkout, copy-on-write)`,
    );
    console.log(
      `whole provision: cold p50 ${coldAll.toFixed(0)} ms, warm p50 ${warmAll.toFixed(0)} ms, ${(coldAll / warmAll).toFixed(1)}× (target ≥ 10×)`,
    );
  } finally {
    await server.close();
    await unmountUnder(path.join(dir, 'runs'));
    rmSync(path.join(dir, 'runs'), { recursive: true, force: true });
  }
}

main().catch((err) => {
  pino().error(err);
  process.exitCode = 1;
});
