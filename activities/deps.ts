import type { Logger } from 'pino';
import type { SandboxDriver } from '../sandbox/sandbox';
import type { ArtifactStore } from '../store/artifacts';
import type { RunLog } from '../store/runLog';
import type { WorkspaceRef } from '../workflows/types';
import type { SecretStore } from './secrets';

/** What activities share on one worker, wired up by the worker. */
export interface ActivityDeps {
  home: string;
  store: ArtifactStore;
  runLog: RunLog;
  driver: SandboxDriver;
  secrets: SecretStore;
  /** This worker: its name and its own task queue. */
  self: WorkspaceRef;
  logger: Logger;
}
