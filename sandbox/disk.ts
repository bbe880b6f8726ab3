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
 * The fastest a command is taken to fill its sandbox (bytes and files a second): the next poll comes before it could
 * reach a limit at that pace, and no later than `MAX_POLL_MS`.
 */
const FILL_PER_SECOND = { bytes: 2 * 1024 ** 3, files: 200_000 };
const MAX_POLL_MS = 4000;

/**
 * Polls the sandbox's writable directories while a command runs and calls `onExceeded` once when they pass a limit:
 * of bytes, or of files (a million empty files take no blocks, but inodes and the host's time to walk them). Each
 * walk's next one comes within half the time the command would need to reach a limit at `FILL_PER_SECOND`, and never
 * sooner than `intervalMs`: far from a limit the walks are few (a Go build cache is thousands of files, each walked
 * twice a poll), near it one every `intervalMs`. Between polls a command can write at most the file-size rlimit per
 * file, and as many files as it makes in a poll's time, so the overshoot is bounded. Returns the function that stops
 * watching.
 */
export function watchDisk(
  dirs: string[],
  limits: { bytes: number; files: number },
  onExceeded: (of: 'bytes' | 'files') => void,
  intervalMs = 500,
): () => void {
  let of: 'bytes' | 'files' = 'bytes';
  let nextMs = intervalMs;
  return pollUntil(
    async () => {
      const [bytes, files] = await Promise.all([diskUsage(dirs).catch(() => 0), diskUsage(dirs, true).catch(() => 0)]);
      of = bytes > limits.bytes ? 'bytes' : 'files';
      const secondsLeft = Math.min(
        (limits.bytes - bytes) / FILL_PER_SECOND.bytes,
        (limits.files - files) / FILL_PER_SECOND.files,
      );
      nextMs = Math.min(MAX_POLL_MS, Math.max(intervalMs, (secondsLeft * 1000) / 2));
      return bytes > limits.bytes || files > limits.files;
    },
    () => onExceeded(of),
    () => nextMs,
  );
}

/**
 * Asks `tripped` every `intervalMs` (one question at a time; a function: the delay after each answer) until it says
 * yes, then calls `onTripped` once. Returns the function that stops asking.
 */
export function pollUntil(
  tripped: () => Promise<boolean>,
  onTripped: () => void,
  intervalMs: number | (() => number) = 500,
): () => void {
  const delay = typeof intervalMs === 'number' ? () => intervalMs : intervalMs;
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
    timer = setTimeout(poll, delay());
  };
  timer = setTimeout(poll, delay());
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
