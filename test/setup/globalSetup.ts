import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startPodmanService } from '../../sandbox/podman';
import { startDevServer } from '../../temporal/devServer';
import { freePort } from '../helpers/ports';
import { ensureGofakes3 } from '../helpers/s3Server';

/**
 * One real Temporal dev server, one workflow bundle and one Docker-API engine (Podman's service; the sandbox image
 * is built by scripts/setup.sh) for the whole suite, and the S3 server's binary that test files start.
 */
export default async function globalSetup(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-test-'));
  // NIGHTSHIFT_TEST_TEMPORAL set beforehand runs the suite against that server (e.g. a PostgreSQL-backed cluster).
  if (!process.env.NIGHTSHIFT_TEST_TEMPORAL) {
    const server = await startDevServer({
      dataDir: path.join(dir, 'temporal'),
      port: await freePort(),
      uiPort: await freePort(),
      headless: true,
      progress: (line) => process.stderr.write(`${line}\n`),
    });
    process.env.NIGHTSHIFT_TEST_TEMPORAL = server.address;
    (globalThis as Record<string, unknown>).__nightshiftDevServer = server;
  }
  // Built once here, not by test files racing each other.
  await ensureGofakes3((line) => process.stderr.write(`${line}\n`));
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows') });
  const bundle = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundle, code);
  process.env.NIGHTSHIFT_TEST_DIR = dir;
  process.env.NIGHTSHIFT_WORKFLOW_BUNDLE = bundle;
  const podman = await startPodmanService(path.join(dir, 'podman', 'podman.sock'), path.join(dir, 'podman.log'));
  process.env.NIGHTSHIFT_TEST_DOCKER_HOST = podman.host;
  (globalThis as Record<string, unknown>).__nightshiftPodman = podman;
}
