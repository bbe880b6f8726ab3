import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startCluster } from '../../temporal/cluster';
import { startDevServer } from '../../temporal/devServer';
import { freePort } from '../helpers/ports';

// What the global setups (the whole suite's and each tier's) make: the suite's dir, its Temporal server and its
// workflow bundle.

type Progress = (line: string) => void;

/**
 * The suite's scratch dir (NIGHTSHIFT_TEST_DIR): test helpers make their repos and homes in it; teardown removes it.
 */
export function makeSuiteDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-test-'));
  process.env.NIGHTSHIFT_TEST_DIR = dir;
  return dir;
}

/**
 * One real Temporal server for the suite, its address in NIGHTSHIFT_TEST_TEMPORAL: the dev server, or with
 * NIGHTSHIFT_TEST_CLUSTER=postgres the server on PostgreSQL (`npm run test:cluster`); none when that variable already
 * names one. `dev.inMemory`: the dev server's database in memory.
 */
export async function startSuiteTemporal(
  dir: string,
  progress: Progress,
  dev: { inMemory?: boolean } = {},
): Promise<void> {
  if (process.env.NIGHTSHIFT_TEST_TEMPORAL) return;
  const cluster = process.env.NIGHTSHIFT_TEST_CLUSTER;
  if (cluster && cluster !== 'postgres')
    throw new Error(`NIGHTSHIFT_TEST_CLUSTER=${cluster}: the only cluster is "postgres"`);
  // Under root, PostgreSQL runs as the postgres user, which must get through the suite's dir to its data.
  if (cluster) chmodSync(dir, 0o711);
  const server = cluster
    ? await startCluster({ dataDir: path.join(dir, 'cluster'), port: await freePort(), progress })
    : await startDevServer({
        dataDir: path.join(dir, 'temporal'),
        port: await freePort(),
        uiPort: await freePort(),
        headless: true,
        progress,
        ...dev,
      });
  process.env.NIGHTSHIFT_TEST_TEMPORAL = server.address;
  // globalTeardown stops it.
  (globalThis as Record<string, unknown>).__nightshiftTemporal = server;
}

/** workflows/ bundled once, here, not by test files racing each other; its path in NIGHTSHIFT_WORKFLOW_BUNDLE. */
export async function bundleSuiteWorkflows(dir: string): Promise<void> {
  // Webpack's report of every module would bury jest's.
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    logger: new DefaultLogger('WARN'),
  });
  const bundle = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundle, code);
  process.env.NIGHTSHIFT_WORKFLOW_BUNDLE = bundle;
}
