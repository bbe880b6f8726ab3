import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Stack } from '../cli/up';
import { unmountUnder } from '../sandbox/overlay';
import { exited } from '../testbed/workerProcess';
import { freePort } from '../temporal/ports';

/**
 * A bench's environment: its home under `dir` (unless `extra` names one), its repos in `dir`, free ports for the API
 * and its own Temporal dev server (never one from the caller's environment), and `extra` on top.
 */
export async function benchEnv(dir: string, extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NIGHTSHIFT_HOME: path.join(dir, 'home'),
    NIGHTSHIFT_REPOS_DIR: dir,
    NIGHTSHIFT_PORT: String(await freePort()),
    NIGHTSHIFT_TEMPORAL_PORT: String(await freePort()),
    NIGHTSHIFT_TEMPORAL_UI_PORT: String(await freePort()),
    ...extra,
  };
  delete env.TEMPORAL_ADDRESS;
  return env;
}

/** A bench's numbers, as `bench/results/<name>-<date>.json`; its path is printed. */
export function writeResults(name: string, data: unknown): void {
  const results = path.resolve(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(results, { recursive: true });
  const file = path.join(results, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2));
  console.log(`written to ${file}`);
}

/** Everything a bench started, stopped: its extra workers, its stack, and its directory (sandbox mounts first). */
export async function stopBench(stack: Stack, workers: ChildProcess[], dir: string): Promise<void> {
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map(exited));
  await stack.stop();
  await unmountUnder(dir);
  rmSync(dir, { recursive: true, force: true });
}
