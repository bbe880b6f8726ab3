import { bundleWorkflowCode } from '@temporalio/worker';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startPodmanService } from '../../sandbox/podman';
import { startCluster } from '../../temporal/cluster';
import { startDevServer } from '../../temporal/devServer';
import { freePort } from '../helpers/ports';
import { ensureGofakes3 } from '../helpers/s3Server';

/**
 * One real Temporal server (the dev server; with NIGHTSHIFT_TEST_CLUSTER=postgres the server on PostgreSQL, as
 * `npm run test:cluster` does; or the one NIGHTSHIFT_TEST_TEMPORAL names), one workflow bundle, one Docker-API engine
 * (Podman's service; the sandbox image is built by scripts/setup.sh) and the S3 server's binary, for the whole suite.
 */
export default async function globalSetup(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-test-'));
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  const cluster = process.env.NIGHTSHIFT_TEST_CLUSTER;
  if (cluster && cluster !== 'postgres') throw new Error(`NIGHTSHIFT_TEST_CLUSTER=${cluster}: the only cluster is "postgres"`);
  // Under root, PostgreSQL runs as the postgres user, which must get through the suite's dir to its data.
  if (cluster) chmodSync(dir, 0o711);
  if (!process.env.NIGHTSHIFT_TEST_TEMPORAL) {
    const server = cluster
      ? await startCluster({ dataDir: path.join(dir, 'cluster'), port: await freePort(), progress })
      : await startDevServer({ dataDir: path.join(dir, 'temporal'), port: await freePort(), uiPort: await freePort(), headless: true, progress });
    process.env.NIGHTSHIFT_TEST_TEMPORAL = server.address;
    (globalThis as Record<string, unknown>).__nightshiftTemporal = server;
  }
  // Built once here, not by test files racing each other.
  await ensureGofakes3(progress);
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows') });
  const bundle = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundle, code);
  process.env.NIGHTSHIFT_TEST_DIR = dir;
  process.env.NIGHTSHIFT_WORKFLOW_BUNDLE = bundle;
  const podman = await startPodmanService(path.join(dir, 'podman', 'podman.sock'), path.join(dir, 'podman.log'));
  process.env.NIGHTSHIFT_TEST_DOCKER_HOST = podman.host;
  (globalThis as Record<string, unknown>).__nightshiftPodman = podman;
}
