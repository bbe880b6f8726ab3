import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import * as path from 'node:path';
import type { S3ArtifactsConfig } from '../../store/s3Artifacts';
import { s3ClientFor } from '../../store/s3Artifacts';
import { stopProcess } from '../../temporal/devServer';
import { goInstall, toolsDir } from '../../temporal/cli';
import { freePort } from './ports';
import { tempDir } from './repos';

/** A real S3-compatible server (Go, in-memory), built once into the tools dir like the Temporal CLI. */
const GOFAKES3 = {
  module: 'github.com/johannesboyne/gofakes3/cmd/gofakes3@v1.2.0',
  binary: 'gofakes3',
  what: 'gofakes3 (the tests’ S3 server)',
};

export async function ensureGofakes3(progress?: (line: string) => void): Promise<string> {
  const built = path.join(toolsDir(), GOFAKES3.binary);
  return existsSync(built) ? built : goInstall(GOFAKES3, progress);
}

export interface S3Server {
  endpoint: string;
  /** The server config for a bucket on it, as NIGHTSHIFT_ARTIFACTS=s3://… would give (any credentials sign). */
  artifacts(bucket: string, prefix?: string): S3ArtifactsConfig;
  /** Create a bucket through the S3 API. */
  createBucket(bucket: string): Promise<void>;
  stop(): Promise<void>;
}

export const S3_TEST_CREDENTIALS = {
  accessKeyId: 'AKIANIGHTSHIFTTEST01',
  secretAccessKey: 'nightshift-test-secret-never-in-history',
};

/** gofakes3 on a free loopback port, keeping its objects in memory; its log goes to a temp file. */
export async function startS3Server(): Promise<S3Server> {
  const bin = await ensureGofakes3();
  const port = await freePort();
  const logFile = path.join(tempDir('s3'), 'gofakes3.log');
  const log = openSync(logFile, 'a');
  const child = spawn(bin, ['-backend', 'memory', '-host', `127.0.0.1:${port}`], { stdio: ['ignore', log, log] });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gofakes3 stopped at start (exit ${child.exitCode}); see ${logFile}`);
    const up = await fetch(endpoint).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gofakes3 did not answer on ${endpoint} within 20s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const artifacts = (bucket: string, prefix = ''): S3ArtifactsConfig => ({
    driver: 's3',
    bucket,
    prefix,
    endpoint,
    region: 'us-east-1',
    credentials: S3_TEST_CREDENTIALS,
  });
  return {
    endpoint,
    artifacts,
    async createBucket(bucket) {
      await s3ClientFor(artifacts(bucket)).send(new CreateBucketCommand({ Bucket: bucket }));
    },
    stop: () => stopProcess(child),
  };
}
