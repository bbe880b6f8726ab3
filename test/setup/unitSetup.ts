import { findTemporal } from '../../temporal/cli';
import { bundleSuiteWorkflows, makeSuiteDir, startSuiteTemporal } from './suite';

/**
 * The fast tier (`npm run test:unit`): the Temporal dev server and the workflow bundle, nothing else: no Podman, no
 * apt-get, no network. The dev server stands in for Temporal's time-skipping test server, which is downloaded on first
 * use; its timers run in real time, so the tests use short ones.
 */
export default async function unitSetup(): Promise<void> {
  if (!process.env.NIGHTSHIFT_TEST_TEMPORAL && !findTemporal()) {
    // Building it here (go install) would take minutes and the network: say how to get it, and stop.
    process.stderr.write('\ntest:unit: the Temporal CLI is missing: `npm run setup` builds it into ~/.cache/nightshift/bin (or set NIGHTSHIFT_TEMPORAL_BIN)\n');
    process.exit(1);
  }
  const dir = makeSuiteDir();
  await startSuiteTemporal(dir, (line) => process.stderr.write(`${line}\n`));
  await bundleSuiteWorkflows(dir);
}
