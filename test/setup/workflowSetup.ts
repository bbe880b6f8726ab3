import { findTemporal, toolsDir } from '../../temporal/cli';
import { bundleSuiteWorkflows, makeSuiteDir, startSuiteTemporal } from './suite';

/**
 * The workflow tier (`npm run test:workflow`): the Temporal dev server and the workflow bundle, nothing else: no
 * Podman, no apt-get, no network. The dev server stands in for Temporal's time-skipping test server, which is
 * downloaded on first use; its timers run in real time, so the tests use short ones.
 */
export default async function workflowSetup(): Promise<void> {
  if (!process.env.NIGHTSHIFT_TEST_TEMPORAL && !findTemporal()) {
    // Building it here (go install) would take minutes and the network: say how to get it, and stop.
    process.stderr.write(
      `\ntest:workflow: the Temporal CLI is not at NIGHTSHIFT_TEMPORAL_BIN, on PATH or in ${toolsDir()}: \`npm run setup\` builds it\n`,
    );
    process.exit(1);
  }
  const dir = makeSuiteDir();
  // In memory: its SQLite file's writes made the workflow tests twice as slow here, and nothing needs them to last.
  await Promise.all([
    startSuiteTemporal(dir, (line) => process.stderr.write(`${line}\n`), { inMemory: true }),
    bundleSuiteWorkflows(dir),
  ]);
}
