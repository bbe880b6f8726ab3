import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findTemporal, TEMPORAL_CLI_WHAT } from '../../temporal/cli';

test("the tools dir's Temporal CLI is used only when it is the current build (an older one is rebuilt, not run)", () => {
  const tools = mkdtempSync(path.join(os.tmpdir(), 'tools-'));
  const binary = path.join(tools, 'temporal');
  writeFileSync(binary, '#!/bin/sh\n');
  chmodSync(binary, 0o755);
  const saved = { ...process.env };
  // Neither an explicit binary nor one elsewhere on PATH: only the tools dir (on PATH too) can answer.
  Object.assign(process.env, { NIGHTSHIFT_TOOLS_DIR: tools, PATH: `${tools}:/usr/bin:/bin` });
  delete process.env.NIGHTSHIFT_TEMPORAL_BIN;
  try {
    expect(findTemporal()).toBeNull();
    writeFileSync(`${binary}.build`, 'github.com/temporalio/cli/cmd/temporal@v1.5.1\n');
    expect(findTemporal()).toBeNull();
    writeFileSync(`${binary}.build`, `${TEMPORAL_CLI_WHAT}\n`);
    expect(findTemporal()).toBe(binary);
  } finally {
    process.env = saved;
  }
});
