import type { Checkpoint } from './run';

export interface SignInput {
  runId: string;
  repo: string;
  branch: string;
  /** The base commit the run's branch stands on: its commits are those after it. */
  baseCommit: string;
  checkpoint: Checkpoint;
  /** On a forge: the commit already pushed (and signed); only the commits after it are signed. */
  since?: string;
  /** Commits signed already, by other runs (a plan's tasks): they and their ancestors are kept as they are. */
  keep?: string[];
  /**
   * The committer date to give the signed commits (the workflow's clock). Given, a retry signs the same commits
   * again byte for byte (ed25519 is deterministic): needed once they may have been pushed. Default: now.
   */
  signedAt?: string;
}
