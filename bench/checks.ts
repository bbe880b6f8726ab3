// `npm run bench:checks`: what holding the checks to the change costs (docs/checks.md), with real parts: a Temporal
// dev server, a worker, bwrap, git. The fixture is a small library's suite (30 node:test files, 300 tests, like
// jshttp's packages); an agent fixes its bug. The checks stage is timed per run, beside its floor (the check's
// command alone, on the host, in a checkout) and the target (2× the stage with the defences off). Prints a table;
// asserts nothing. Knob: BENCH_RUNS (default 5 per row).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startStack, type Stack } from '../cli/up';
import { loadConfig } from '../config';
import { unmountUnder } from '../sandbox/overlay';
import { benchEnv } from './benchEnv';
import { makeRepoIn } from '../testbed/makeRepo';
import { FINAL_STATUSES, type RunState } from '../contracts/run';
import { elapsedMs, percentiles, printTable, runBench } from './stats';
import { submit as submitSpec } from './submit';

const RUNS = Number(process.env.BENCH_RUNS || 5);
const FILES = 30;
const TESTS_PER_FILE = 10;

/** A library of 30 small modules, each with a test file of 10 tests; module 0 has a bug (its `scale` adds). */
function fixture(): Record<string, string> {
  const files: Record<string, string> = {
    'package.json':
      JSON.stringify(
        { name: 'lib', version: '1.0.0', private: true, scripts: { test: 'node --test test/' } },
        null,
        2,
      ) + '\n',
    'test/helpers.js':
      "const assert = require('node:assert');\nexports.expectEqual = (got, want) => assert.deepStrictEqual(got, want);\n",
  };
  for (let m = 0; m < FILES; m++) {
    files[`lib/m${m}.js`] =
      `exports.scale = (xs, k) => xs.map((x) => x ${m === 0 ? '+' : '*'} k);\nexports.total = (xs) => xs.reduce((a, b) => a + b, 0);\n`;
    const tests = Array.from(
      { length: TESTS_PER_FILE },
      (_, t) =>
        `test('m${m} scales ${t}', () => assert.strictEqual(m.total(m.scale([1, 2, ${t}], ${t + 2})), ${(3 + t) * (t + 2)}));`,
    );
    // Assertions written out, as jshttp's are: the canary copies one of them (a helper call it cannot see into).
    files[`test/m${m}.test.js`] = [
      "const { test } = require('node:test');",
      "const assert = require('node:assert');",
      `const m = require('../lib/m${m}');`,
      '',
      ...tests,
      '',
    ].join('\n');
  }
  return files;
}

const FIX = "sed -i 's/x + k/x * k/' lib/m0.js";
const NEW_TEST = `${FIX}; printf "const { test } = require('node:test');\\nconst { expectEqual } = require('./helpers');\\ntest('scales nothing', () => expectEqual(require('../lib/m0').scale([], 3), []));\\n" > test/extra.test.js`;

interface Row {
  label: string;
  agent: string;
  baseline: boolean;
}

const ROWS: Row[] = [
  { label: 'defences off (baseline: false): the check once, in a fresh sandbox', agent: FIX, baseline: false },
  { label: 'default, the fix only: + the canary run (fresh sandbox)', agent: FIX, baseline: true },
  { label: "default, the fix and a new test: + the base's tests run (fresh sandbox)", agent: NEW_TEST, baseline: true },
];

async function submit(stack: Stack, repo: string, row: Row, i: number): Promise<string> {
  const body = {
    title: `checks bench ${i}`,
    task: 'Fix scale.',
    repo,
    agent: { kind: 'command', command: ['sh', '-c', row.agent] },
    checks: [{ name: 'test', run: 'npm test', baseline: row.baseline }],
    limits: { iterations: 1 },
    approval: { required: false },
  };
  return submitSpec(stack, body);
}

/** The run's state; a refused or dropped request (a loaded machine) is asked again. */
async function stateOf(stack: Stack, id: string): Promise<RunState> {
  for (let tries = 1; ; tries++) {
    try {
      return (await (
        await fetch(`${stack.apiUrl}/v1/runs/${id}`, { headers: { authorization: `Bearer ${stack.token}` } })
      ).json()) as RunState;
    } catch (err) {
      if (tries >= 5) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function checksStageMs(stack: Stack, repo: string, row: Row, i: number): Promise<number> {
  const id = await submit(stack, repo, row, i);
  for (;;) {
    const state = await stateOf(stack, id);
    if (FINAL_STATUSES.includes(state.status)) {
      if (state.status !== 'succeeded') throw new Error(`bench run ended ${state.status}: ${state.failure?.reason}`);
      return state.stages.find((s) => s.stage === 'checks')!.durationMs ?? 0;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The check's command alone on the host, in a checkout of the fixed fixture: the floor under any checks stage. */
function floorMs(repo: string, scratch: string): number[] {
  const tree = path.join(scratch, 'floor');
  execFileSync('git', ['clone', '--quiet', repo, tree]);
  execFileSync('sh', ['-c', FIX], { cwd: tree });
  return Array.from({ length: RUNS }, () => {
    const t = process.hrtime.bigint();
    execFileSync('npm', ['test', '--silent'], { cwd: tree, stdio: 'ignore' });
    return elapsedMs(t);
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-bench-checks-'));
  const env = await benchEnv(dir);
  const stack = await startStack({ devServer: true, worker: true, api: true }, loadConfig(env));
  try {
    const repo = makeRepoIn(dir, fixture());
    console.log(
      `Nightshift checks bench on ${os.cpus().length} cores, load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}: ${FILES} test files, ${FILES * TESTS_PER_FILE} tests (node --test), bwrap, ${RUNS} runs a row`,
    );
    const floor = percentiles(floorMs(repo, dir)).p50;
    // The baseline is measured once per base and cached: a first run pays it, and is not counted.
    await checksStageMs(stack, repo, ROWS[1], -1);
    const medians: number[] = [];
    let i = 0;
    for (const row of ROWS) {
      const times = [];
      for (let n = 0; n < RUNS; n++) times.push(await checksStageMs(stack, repo, row, i++));
      medians.push(percentiles(times).p50);
    }
    const off = medians[0];
    const ms = (n: number) => `${n.toFixed(0)} ms`;
    printTable([
      ['checks stage (median)', 'measured', '× floor', '× defences off', 'target ≤ 2× defences off'],
      ['floor: `npm test` alone on the host', ms(floor), '1.0×', '', ''],
      ...ROWS.map((r, k) => [
        r.label,
        ms(medians[k]),
        `${(medians[k] / floor).toFixed(1)}×`,
        `${(medians[k] / off).toFixed(2)}×`,
        k === 0 ? '' : medians[k] <= 2 * off ? 'met' : 'MISSED',
      ]),
    ]);
  } finally {
    await stack.stop();
    await unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
