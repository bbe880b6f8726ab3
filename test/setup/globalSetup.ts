import * as path from 'node:path';
import { startPodmanService } from '../../sandbox/podman';
import { ensureGofakes3 } from '../helpers/s3Server';
import { bundleSuiteWorkflows, makeSuiteDir, startSuiteTemporal } from './suite';

/**
 * The whole suite (`npm test`): one real Temporal server (the dev server; with NIGHTSHIFT_TEST_CLUSTER=postgres the
 * server on PostgreSQL, as `npm run test:cluster` does; or the one NIGHTSHIFT_TEST_TEMPORAL names), one workflow
 * bundle, one Docker-API engine (Podman's service; the sandbox image is built by scripts/setup.sh) and the S3 server's
 * binary.
 */
export default async function globalSetup(): Promise<void> {
  const dir = makeSuiteDir();
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  await startSuiteTemporal(dir, progress);
  await ensureGofakes3(progress);
  await bundleSuiteWorkflows(dir);
  const podman = await startPodmanService(path.join(dir, 'podman', 'podman.sock'), path.join(dir, 'podman.log'));
  process.env.NIGHTSHIFT_TEST_DOCKER_HOST = podman.host;
  (globalThis as Record<string, unknown>).__nightshiftPodman = podman;
}
