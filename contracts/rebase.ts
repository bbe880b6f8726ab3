import type { Checkpoint } from './run';

export interface RebaseInput {
  runId: string;
  repo: string;
  base: string;
  branch: string;
  /** The base commit the run's branch grew from. */
  baseCommit: string;
  checkpoint: Checkpoint;
  iteration: number;
}

export type Rebase =
  | { moved: false }
  | {
      moved: true;
      /** The base's tip the branch now stands on. */
      baseCommit: string;
      /** The run's changes on that tip: its commits replayed, or, on a conflict, one commit holding git's markers. */
      checkpoint: Checkpoint;
      diffId: string;
      changedFiles: string[];
      /**
       * Files the run's changes and the base's both changed in ways git cannot join; empty when the rebase was clean.
       */
      conflicts: string[];
    };
