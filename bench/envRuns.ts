// What bench:env's rows share: a spec submitted to a real stack, its run waited for, and the times read from its
// state (submit → agent, the setup stage, the second iteration's check) and the environment entry it made.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { Stack } from '../cli/up';
import type { RunState } from '../contracts/run';
import { elapsedMs } from './stats';
import { submit } from './submit';

/** The run's final state; a run that did not succeed measures nothing, so it stops the bench with its reason. */
async function finished(stack: Stack, id: string): Promise<RunState> {
  let state: RunState;
  try {
    state = await stack.client.workflow.getHandle(id).result();
  } catch (err) {
    const e = err as Error & { cause?: Error & { details?: unknown[] } };
    throw new Error(`run ${id} failed: ${(e.cause?.message ?? e.message).split('\n')[0]}`);
  }
  if (state.status !== 'succeeded')
    throw new Error(`run ${id} ${state.status}: ${state.failure?.reason.split('\n')[0] ?? 'no reason given'}`);
  return state;
}

export interface Measured {
  state: RunState;
  submitToAgentMs: number;
  setupStageMs: number;
  /** The second iteration's check: how long, and whether its log shows anything installed or any connection. */
  secondCheck?: { ms: number; installed: boolean };
}

/**
 * One run of `spec` to its end. `check` names the check whose second-iteration time is read; `installed` is what
 * its log would show had it installed or fetched anything.
 */
export async function measuredRun(
  stack: Stack,
  spec: object,
  home: string,
  check: string,
  installed: RegExp,
): Promise<Measured> {
  const state = await finished(stack, await submit(stack, spec));
  const agent = state.stages.find((s) => s.stage === 'agent')!;
  const setup = state.stages.find((s) => s.stage === 'setup')!;
  const result = state.checks.find((c) => c.name === check);
  const log = result ? readFileSync(path.join(home, 'artifacts', result.logId.slice(0, 2), result.logId), 'utf8') : '';
  return {
    state,
    submitToAgentMs: Date.parse(agent.startedAt) - Date.parse(state.createdAt),
    setupStageMs: setup.durationMs ?? 0,
    secondCheck: state.iteration >= 2 && result ? { ms: result.durationMs, installed: installed.test(log) } : undefined,
  };
}

/** The environment entry `key` on whichever worker made it (`<home>/work/<worker>/.env-cache/<key>`). */
export function entryDir(home: string, key: string): string | undefined {
  const work = path.join(home, 'work');
  return readdirSync(work)
    .map((worker) => path.join(work, worker, '.env-cache', key))
    .find((dir) => existsSync(dir));
}

/** A bare copy of a tree (cp -a), the floor under any restore of it. */
export function copyFloorMs(tree: string, scratch: string): number {
  const target = path.join(scratch, `copy-${Date.now()}`);
  const t = process.hrtime.bigint();
  execFileSync('cp', ['-a', tree, target]);
  const ms = elapsedMs(t);
  rmSync(target, { recursive: true, force: true });
  return ms;
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
export const met = (ok: boolean) => (ok ? 'met' : 'MISSED');

/**
 * The warm run's rows, npm's and Go's alike: submit → agent beside the ≤ 2 s target, the environment's overlay beside
 * `floor` (a copy of what it holds), and the cold run's time over the warm one's beside the ≥ 10× target.
 */
export function warmRows(label: string, cold: Measured, warm: Measured, floor: string, hit = ''): string[][] {
  const ratio = cold.submitToAgentMs / warm.submitToAgentMs;
  return [
    [label, seconds(warm.submitToAgentMs), '', `≤ 2 s: ${met(warm.submitToAgentMs <= 2000)}`],
    ['  environment in the sandbox (overlay)', `${warm.state.environment!.readyMs} ms`, floor, hit],
    ['  cold / warm', `${ratio.toFixed(1)}×`, '', `≥ 10×: ${met(ratio >= 10)}`],
  ];
}
