import type { Spec } from '../spec/schema';
import type { Checkpoint } from './run';
import type { EnvironmentInput } from './setup';

export interface ProvisionInput {
  runId: string;
  repo: string;
  base?: string;
  branch: string;
  sandbox: Spec['sandbox'];
  checkpoint?: Checkpoint;
  /** The base commit the run's branch grew from, once it has one: only the rebase stage moves a run to a newer one. */
  baseCommit?: string;
  /** The run's environment, once its setup stage made it: a re-provision restores it (or makes it again). */
  environment?: EnvironmentInput;
}

export interface ProvisionResult {
  base: string;
  baseCommit: string;
}
