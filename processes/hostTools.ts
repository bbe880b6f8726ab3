import { hostToolEnv } from './env';
import { ProgramError, runProgram } from './run';

export { hostToolEnv };

/** A host tool (mount, tar, chown…) with `hostToolEnv()`; resolves to what it printed, rejects with its last words. */
export async function runHostTool(cmd: string, args: string[], maxBuffer = 16 * 1024 * 1024): Promise<string> {
  try {
    return (await runProgram(cmd, args, { env: hostToolEnv(), maxBuffer })).stdout;
  } catch (err) {
    const stderr = err instanceof ProgramError ? err.stderr : '';
    throw new Error(`${cmd} failed: ${stderr.trim().split('\n').slice(-2).join(' ') || (err as Error).message}`);
  }
}
