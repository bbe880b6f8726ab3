import * as path from 'node:path';
import { BwrapDriver } from '../../sandbox/bwrap';
import { DockerDriver } from '../../sandbox/docker';
import type { SandboxLimits } from '../../sandbox/policy';
import type { ExecOptions, ExecResult, Sandbox, SandboxDriver } from '../../sandbox/sandbox';
import { tempDir } from './stack';

export const LIMITS: SandboxLimits = {
  memoryBytes: 256 * 1024 ** 2,
  cpus: 1,
  pids: 64,
  openFiles: 256,
  fileSizeBytes: 8 * 1024 ** 2,
  diskBytes: 64 * 1024 ** 2,
  files: 20_000,
};

/**
 * The docker driver's image: the tests' own when NIGHTSHIFT_DOCKER_IMAGE names one, as the worker's config reads it.
 */
export const SANDBOX_IMAGE = process.env.NIGHTSHIFT_DOCKER_IMAGE || 'nightshift-sandbox:latest';

/** Both drivers, each against its real engine: bubblewrap, and Podman's Docker API started by the suite's setup. */
export const DRIVERS: [string, () => SandboxDriver][] = [
  ['bwrap', () => new BwrapDriver()],
  ['docker', () => dockerDriver()],
];

export function dockerDriver(): DockerDriver {
  const host = process.env.NIGHTSHIFT_TEST_DOCKER_HOST;
  if (!host) throw new Error('NIGHTSHIFT_TEST_DOCKER_HOST is not set: the suite setup starts the Podman service');
  return new DockerDriver({ host, image: SANDBOX_IMAGE, worker: `test-${process.pid}`, home: `test-${process.pid}` });
}

/** A fresh sandbox root under the suite's temp dir, laid out like a worker's: `<home>/work/<worker>/<run>`. */
export function sandboxRoot(prefix: string): { home: string; root: string; runId: string } {
  const home = tempDir(prefix);
  const runId = `${prefix}-${path.basename(home)}`;
  return { home, root: path.join(home, 'work', 'w', runId), runId };
}

export type Output = ExecResult & { out: string };

/** `sh -c cmd` in the sandbox, with its output collected. */
export async function sh(sandbox: Sandbox, cmd: string, opts: Partial<ExecOptions> = {}): Promise<Output> {
  let out = '';
  const r = await sandbox.exec({ cmd: ['sh', '-c', cmd], timeoutMs: 20_000, onOutput: (c) => (out += c), ...opts });
  return { out, ...r };
}
