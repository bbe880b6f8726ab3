// `npm run bench:sandbox`: what a sandbox costs here. Provision → exec `true` → teardown with each driver (bwrap: real
// cgroups, rlimits, namespaces; docker: a hardened container on DOCKER_HOST, or on a Podman service started here),
// and the latency the egress proxy adds to an HTTP request. Prints numbers only.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BwrapDriver } from '../sandbox/bwrap';
import { DockerDriver } from '../sandbox/docker';
import { EgressPolicy, EgressProxy } from '../sandbox/egress';
import { startPodmanService } from '../sandbox/podman';
import { policyFor } from '../sandbox/policy';
import type { SandboxDriver } from '../sandbox/sandbox';
import { DEFAULT_SANDBOX } from '../spec/schema';
import { elapsedMs, stats } from './stats';

const runs = Number(process.env.BENCH_EXECS || 50);

/**
 * The p50 targets of a whole cycle (issue 3's for bwrap, the trust-boundaries issue's for both): printed beside each.
 */
const TARGET_P50_MS: Record<string, number> = { bwrap: 50, docker: 600 };

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/** Provision → exec `true` → teardown, `runs` times; prints and returns the timings (ms). */
export async function benchSandbox(
  dir: string,
  driver: SandboxDriver = new BwrapDriver(),
): Promise<{ cycle: number[]; execOnly: number[] }> {
  const { limits } = policyFor(DEFAULT_SANDBOX);
  const cycle: number[] = [];
  const execOnly: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const sandbox = await driver.open({
      runId: `bench-${i}`,
      root: path.join(dir, 'bench', `run-${i}`),
      limits,
      network: [],
    });
    const t1 = process.hrtime.bigint();
    await sandbox.exec({ cmd: ['true'], timeoutMs: 10_000 });
    execOnly.push(elapsedMs(t1));
    await sandbox.teardown();
    cycle.push(elapsedMs(t0));
  }
  const target = TARGET_P50_MS[driver.name];
  const p50 = median(cycle);
  const verdict = target === undefined ? '' : `  (target median ≤ ${target} ms: ${p50 <= target ? 'met' : 'MISSED'})`;
  console.log(`${driver.name.padEnd(6)} provision → exec true → teardown: ${stats(cycle)}${verdict}`);
  console.log(`  of which exec \`true\`:                   ${stats(execOnly)}`);
  return { cycle, execOnly };
}

/** The docker driver on DOCKER_HOST, or on a Podman service started for the bench. */
async function benchDocker(dir: string): Promise<void> {
  const podman = process.env.DOCKER_HOST
    ? undefined
    : await startPodmanService(path.join(dir, 'podman.sock'), path.join(dir, 'podman.log'));
  try {
    const driver = new DockerDriver({
      host: process.env.DOCKER_HOST ?? podman!.host,
      image: process.env.NIGHTSHIFT_DOCKER_IMAGE || 'nightshift-sandbox:latest',
      worker: 'bench',
      home: dir,
    });
    const why = await driver.unavailable();
    if (why) throw new Error(`docker driver: ${why}`);
    await benchSandbox(dir, driver);
  } finally {
    await podman?.stop();
  }
}

/**
 * An HTTP GET to a local server directly, and through the egress proxy's unix socket (as the sandbox's bridge does).
 */
export async function benchEgress(dir: string): Promise<void> {
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const socketPath = path.join(dir, 'proxy.sock');
  // A loopback server is internal: opened as the admin would (NIGHTSHIFT_EGRESS_INTERNAL).
  const proxy = new EgressProxy(new EgressPolicy([`127.0.0.1:${port}`], [`127.0.0.1:${port}`]), () => undefined);
  await proxy.listen(socketPath);
  const agent = new http.Agent({ keepAlive: false });
  const get = (opts: http.RequestOptions) =>
    new Promise<void>((resolve, reject) => {
      http.get({ agent, ...opts }, (res) => res.resume().on('end', resolve)).on('error', reject);
    });
  const direct: number[] = [];
  const proxied: number[] = [];
  for (let i = 0; i < runs * 4; i++) {
    let t = process.hrtime.bigint();
    await get({ host: '127.0.0.1', port, path: '/' });
    direct.push(elapsedMs(t));
    t = process.hrtime.bigint();
    await get({ socketPath, path: `http://127.0.0.1:${port}/`, headers: { host: `127.0.0.1:${port}` } });
    proxied.push(elapsedMs(t));
  }
  await proxy.close();
  server.close();
  console.log(`HTTP GET direct:                         ${stats(direct)}`);
  console.log(
    `HTTP GET through the egress proxy:       ${stats(proxied)}  (+${(median(proxied) - median(direct)).toFixed(2)} ms median)`,
  );
}

if (require.main === module) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-bench-sandbox-'));
  benchSandbox(dir)
    .then(() => benchDocker(dir))
    .then(() => benchEgress(dir))
    .then(
      () => rmSync(dir, { recursive: true, force: true }),
      (err: Error) => {
        console.error(`bench failed: ${err.message}`);
        process.exitCode = 1;
      },
    );
}
