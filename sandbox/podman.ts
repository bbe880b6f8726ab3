import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { hostToolEnv } from '../processes/hostTools';
import { dockerClient } from './docker';

export interface PodmanService {
  /** DOCKER_HOST for the service: `unix:///…/podman.sock`. */
  host: string;
  stop(): Promise<void>;
}

/**
 * Podman's Docker-compatible API on a unix socket, for machines without a Docker engine. runc, not crun: crun
 * cannot create containers on a cgroup v1 setup like this one.
 */
export async function startPodmanService(socketPath: string, logFile: string): Promise<PodmanService> {
  await fs.mkdir(path.dirname(socketPath), { recursive: true });
  await fs.rm(socketPath, { force: true });
  const log = await fs.open(logFile, 'a');
  // Its own directory as cwd: conmon leaves an `oom` marker file in its working directory when a container is
  // OOM-killed.
  const child: ChildProcess = spawn(
    'podman',
    ['--runtime', 'runc', 'system', 'service', '--time=0', `unix://${socketPath}`],
    { stdio: ['ignore', log.fd, log.fd], cwd: path.dirname(socketPath), env: hostToolEnv() },
  );
  const exited = new Promise<string>((resolve) => {
    child.on('error', (err) => resolve(`cannot run podman: ${err.message} (apt-get install podman runc)`));
    child.on('exit', (code) => resolve(`podman system service exited with ${code}; see ${logFile}`));
  });
  const host = `unix://${socketPath}`;
  const docker = dockerClient(host);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const failed = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 100))]);
    if (failed) {
      await log.close();
      throw new Error(failed);
    }
    if (
      await docker.ping().then(
        () => true,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await log.close();
      throw new Error(`podman's Docker API did not answer on ${socketPath} within 30 s; see ${logFile}`);
    }
  }
  return {
    host,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await log.close();
    },
  };
}
