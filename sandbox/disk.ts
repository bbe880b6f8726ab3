import { hostToolEnv } from '../processes/hostTools';
import { type ProgramError, runProgram } from '../processes/run';

/**
 * Bytes the directories take on disk (allocated blocks, hardlinks counted once), or with `inodes` their files and
 * directories, by `du`.
 */
export async function diskUsage(dirs: string[], inodes = false): Promise<number> {
  const args = ['-s', '-c', inodes ? '--inodes' : '-B1', '--', ...dirs];
  // du exits 1 when a file vanished under it: the total is still right for what is there.
  const { stdout, failed } = await runProgram('du', args, { env: hostToolEnv(), maxBuffer: 1024 ** 2 }).then(
    (out) => ({ stdout: out.stdout, failed: undefined }),
    (err: ProgramError) => ({ stdout: err.stdout, failed: err }),
  );
  const total = /^(\d+)\s+total$/m.exec(stdout);
  if (!total) throw failed ?? new Error(`du printed no total: ${stdout}`);
  return Number(total[1]);
}

/**
 * Polls the sandbox's writable directories while a command runs and calls `onExceeded` once when they pass a limit:
 * of bytes, or of files (a million empty files take no blocks, but inodes and the host's time to walk them). Between
 * polls a command can write at most the file-size rlimit per file, and as many files as it makes in a poll's time,
 * so the overshoot is bounded. Returns the function that stops watching.
 */
export function watchDisk(
  dirs: string[],
  limits: { bytes: number; files: number },
  onExceeded: (of: 'bytes' | 'files') => void,
  intervalMs = 500,
): () => void {
  let of: 'bytes' | 'files' = 'bytes';
  return pollUntil(
    async () => {
      const [bytes, files] = await Promise.all([diskUsage(dirs).catch(() => 0), diskUsage(dirs, true).catch(() => 0)]);
      of = bytes > limits.bytes ? 'bytes' : 'files';
      return bytes > limits.bytes || files > limits.files;
    },
    () => onExceeded(of),
    intervalMs,
  );
}

/**
 * Asks `tripped` every `intervalMs` (one question at a time) until it says yes, then calls `onTripped` once. Returns
 * the function that stops asking.
 */
export function pollUntil(tripped: () => Promise<boolean>, onTripped: () => void, intervalMs = 500): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const poll = async () => {
    const yes = await tripped();
    if (stopped) return;
    if (yes) {
      stopped = true;
      onTripped();
      return;
    }
    timer = setTimeout(poll, intervalMs);
  };
  timer = setTimeout(poll, intervalMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
