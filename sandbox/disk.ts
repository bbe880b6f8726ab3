import { execFile } from 'node:child_process';
import { hostToolEnv } from '../config/hostEnv';

/** Bytes the directories take on disk (allocated blocks, hardlinks counted once), by `du`. */
export function diskUsage(dirs: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('du', ['-s', '-c', '-B1', '--', ...dirs], { encoding: 'utf8', env: hostToolEnv() }, (err, stdout) => {
      // du exits 1 when a file vanished under it: the total is still right for what is there.
      const total = /^(\d+)\s+total$/m.exec(stdout);
      if (total) resolve(Number(total[1]));
      else reject(err ?? new Error(`du printed no total: ${stdout}`));
    });
  });
}

/**
 * Polls the sandbox's writable directories while a command runs and calls `onExceeded` once when they pass the
 * limit. Between polls a command can write at most the file-size rlimit per file, so the overshoot is bounded.
 * Returns the function that stops watching.
 */
export function watchDisk(dirs: string[], limitBytes: number, onExceeded: (usedBytes: number) => void, intervalMs = 500): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout;
  const poll = async () => {
    const used = await diskUsage(dirs).catch(() => 0);
    if (stopped) return;
    if (used > limitBytes) {
      stopped = true;
      onExceeded(used);
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
