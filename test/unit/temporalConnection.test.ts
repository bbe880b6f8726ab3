import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { closeDuringRetry } from '../helpers/closeDuringRetry';

// temporal/connection.ts: closing a client connection while a call waits to be retried must not kill the process.

const script = path.join(__dirname, '..', 'helpers', 'closeDuringRetry.js');

test("the SDK's own connection, closed while a retry waits, dies of the timer's throw (what TemporalConnection is for)", () => {
  const child = spawnSync(process.execPath, [script, 'plain'], { encoding: 'utf8', timeout: 30_000 });
  expect(child.status).not.toBe(0);
  expect(child.stderr).toContain('Channel has been shut down');
});

test('a TemporalConnection closed while a retry waits ends the call with its error, no retry after', async () => {
  const { outcome, calls } = await closeDuringRetry('temporal');
  expect(outcome).toMatch(/^failed: .*UNAVAILABLE/);
  // The retry already waiting (if the answer was back before the close) was made on the open channel; none after.
  expect(calls).toBeLessThanOrEqual(2);
});
