import type { Check, Spec } from '../spec/schema';
import type { Checkpoint } from './run';

import type { EnvironmentInput } from './setup';

export interface ChecksInput {
  runId: string;
  checks: Check[];
  iteration: number;
  checkpoint: Checkpoint;
  /** Per check, unless the check sets its own. */
  timeoutMs: number;
  sandbox: Spec['sandbox'];
  /** Names only, as for the agent. */
  secrets: string[];
  /** The base the run's change is against: the checks run its harness (judge/harness.ts). Absent in old histories. */
  baseCommit?: string;
  harness?: Spec['harness'];
  /**
   * The run's environment (the setup stage's), mounted afresh in every sandbox the checks run in (never the agent's).
   */
  environment?: EnvironmentInput;
}
