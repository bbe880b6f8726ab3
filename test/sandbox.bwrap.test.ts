import * as path from 'node:path';
import type * as Bwrap from '../sandbox/bwrap';
import { LIMITS } from './helpers/sandboxes';
import { tempDir } from './helpers/stack';

// Isolation, network, streaming, timeouts, cancel and teardown are in sandbox.test.ts; this covers how the driver
// reports a missing bubblewrap, which needs the module loaded with another NIGHTSHIFT_BWRAP.

/** The bwrap module as loaded with NIGHTSHIFT_BWRAP set to `bwrap` (read once, at load). */
function loadWith(bwrap: string | undefined): typeof Bwrap {
  const saved = process.env.NIGHTSHIFT_BWRAP;
  if (bwrap === undefined) delete process.env.NIGHTSHIFT_BWRAP;
  else process.env.NIGHTSHIFT_BWRAP = bwrap;
  try {
    let mod!: typeof Bwrap;
    jest.isolateModules(() => {
      mod = require('../sandbox/bwrap');
    });
    return mod;
  } finally {
    if (saved === undefined) delete process.env.NIGHTSHIFT_BWRAP;
    else process.env.NIGHTSHIFT_BWRAP = saved;
  }
}

test('bwrapAvailable reports the installed version, and null when bwrap is missing', async () => {
  expect(await loadWith(undefined).bwrapAvailable()).toMatch(/^bubblewrap \d+\.\d+/);
  expect(await loadWith('/nonexistent/bwrap').bwrapAvailable()).toBeNull();
});

test.each(['/nonexistent/bwrap', 'nightshift-no-such-bwrap'])(
  'exec rejects with an install hint when bwrap (%s) is missing',
  async (bwrap) => {
    const { BwrapDriver } = loadWith(bwrap);
    const root = path.join(tempDir('bwrap-missing'), 'run');
    const sandbox = await new BwrapDriver().open({
      runId: `missing-${path.basename(path.dirname(root))}`,
      root,
      limits: LIMITS,
      network: [],
    });
    try {
      await expect(sandbox.exec({ cmd: ['true'], timeoutMs: 5000 })).rejects.toThrow(
        /bubblewrap \(bwrap\) is not installed: apt-get install bubblewrap/,
      );
    } finally {
      await sandbox.teardown();
    }
  },
);

test('a command exiting 127 or 125 with the wrapper’s words resolves: only the wrapper’s own failures reject', async () => {
  const { BwrapDriver } = loadWith(undefined);
  const root = path.join(tempDir('bwrap-spoof'), 'run');
  const sandbox = await new BwrapDriver().open({
    runId: `spoof-${path.basename(path.dirname(root))}`,
    root,
    limits: LIMITS,
    network: [],
  });
  try {
    const r127 = await sandbox.exec({
      cmd: [
        'sh',
        '-c',
        'echo "prlimit: failed to execute bwrap: No such file or directory" >&2; echo "sh: 1: exec: prlimit: not found" >&2; no-such-command; exit 127',
      ],
      timeoutMs: 5000,
    });
    expect(r127.exitCode).toBe(127);
    const r125 = await sandbox.exec({
      cmd: ['sh', '-c', 'echo "nightshift-cgroup-join-failed-0000000000000000" >&2; exit 125'],
      timeoutMs: 5000,
    });
    expect(r125.exitCode).toBe(125);
  } finally {
    await sandbox.teardown();
  }
});
