import type { Setup, Spec } from '../spec/schema';
import type { EnvironmentView } from './run';

/** What a run's environment is made from: enough to find it by key, or to make it again on any worker. */
export interface EnvironmentInput {
  repo: string;
  baseCommit: string;
  setup: Setup;
  /**
   * The run's submitter (RunInput.submittedBy): the only one whose runs may reuse an entry made from a base off the
   * default branch.
   */
  submittedBy?: string;
}

export interface SetupStageInput {
  runId: string;
  sandbox: Spec['sandbox'];
  environment: EnvironmentInput;
}

export type SetupStageResult = { environment: EnvironmentView } | { failed: string; logId: string };
