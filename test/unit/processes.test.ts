import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { ProgramError, runProgram } from '../../processes/run';

// Host programs run through the spawner (processes/README.md): the same results and failures as execFile, an
// environment of exactly what the caller gave, and a spawner that dies takes nothing down with it.

const env = { PATH: process.env.PATH };

test('what the program printed, in its cwd and with exactly the environment given', async () => {
  const out = await runProgram('sh', ['-c', 'pwd; echo "$A|$SECRET_IN_WORKER"; echo err >&2'], {
    cwd: '/tmp',
    env: { ...env, A: 'a' },
  });
  expect(out).toEqual({ stdout: '/tmp\na|\n', stderr: 'err\n' });
});

test('a program that fails rejects with its exit code and what it printed; one that is missing, with ENOENT', async () => {
  const failed = await runProgram('sh', ['-c', 'echo partial; echo why >&2; exit 3'], { env }).catch((e) => e);
  expect(failed).toBeInstanceOf(ProgramError);
  expect(failed).toMatchObject({ code: 3, stdout: 'partial\n', stderr: 'why\n' });
  await expect(runProgram('/nonexistent/program', [], { env })).rejects.toMatchObject({ code: 'ENOENT' });
});

test('output past maxBuffer fails the call at once', async () => {
  const err = await runProgram('sh', ['-c', 'head -c 5000 /dev/zero; sleep 30'], { env, maxBuffer: 1000 }).catch(
    (e) => e,
  );
  expect(err).toBeInstanceOf(ProgramError);
  expect(err.message).toMatch(/maxBuffer/);
});

test("the spawner holds none of the worker's environment, and one killed fails its calls; the next call starts another", async () => {
  process.env.NIGHTSHIFT_TEST_WORKER_SECRET = 'worker-secret-value';
  try {
    const pid = Number((await runProgram('sh', ['-c', 'echo $PPID'], { env })).stdout);
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8')).not.toContain('worker-secret-value');
    const inFlight = runProgram('sleep', ['30'], { env });
    await promisify(execFile)('kill', ['-9', String(pid)]);
    await expect(inFlight).rejects.toThrow(/the spawner exited \(SIGKILL\) before the program did/);
    const again = Number((await runProgram('sh', ['-c', 'echo $PPID'], { env })).stdout);
    expect(again).not.toBe(pid);
    // Started while the secret was in the worker's environment.
    expect(readFileSync(`/proc/${again}/environ`, 'utf8')).not.toContain('worker-secret-value');
  } finally {
    delete process.env.NIGHTSHIFT_TEST_WORKER_SECRET;
  }
});

test('an idle spawner is let go after 10 s (it exits); the next call starts another', async () => {
  const pid = Number((await runProgram('sh', ['-c', 'echo $PPID'], { env })).stdout);
  await new Promise((r) => setTimeout(r, 11_000));
  expect(() => process.kill(pid, 0)).toThrow();
  const again = Number((await runProgram('sh', ['-c', 'echo $PPID'], { env })).stdout);
  expect(again).not.toBe(pid);
}, 30_000);
