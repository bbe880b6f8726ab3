import { execFile } from 'node:child_process';
import type { ProgramReply, ProgramRequest } from './run';

// The spawner's whole life: run each program the parent asks for, answer with what it printed, and go when the parent
// goes. A small process forks fast; the parent's event loop never waits on a fork (processes/README.md).
process.on('message', (req: ProgramRequest) => {
  execFile(
    req.file,
    req.args,
    { cwd: req.cwd, env: req.env, maxBuffer: req.maxBuffer, encoding: 'utf8' },
    (err, stdout, stderr) => {
      const reply: ProgramReply = { id: req.id, stdout, stderr };
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        reply.error = { message: err.message, code: code ?? null, signal: (err as { signal?: string }).signal ?? null };
      }
      process.send?.(reply);
    },
  );
});
process.on('disconnect', () => process.exit(0));
