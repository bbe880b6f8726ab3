import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

// Recorded with `temporal workflow show --output json` from real runs (see test/fixtures/histories/README.md).
const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'histories');
const histories = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));

// Each replay's worker reports starting and stopping at INFO: that would bury jest's report.
Runtime.install({ logger: new DefaultLogger('WARN') });

test('there are recorded histories to replay', () => {
  expect(histories.length).toBeGreaterThanOrEqual(1);
});

test.each(histories)('the current specRun replays %s without nondeterminism', async (file) => {
  const history = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
  await Worker.runReplayHistory(
    { workflowBundle: { codePath: process.env.NIGHTSHIFT_WORKFLOW_BUNDLE! } },
    history,
    path.basename(file, '.json'),
  );
});
