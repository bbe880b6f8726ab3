import type { Checkpoint } from './run';

export interface DeliverInput {
  runId: string;
  repo: string;
  branch: string;
  checkpoint: Checkpoint;
  /** Also push the branch to the repo's `origin` (`deliver.push`). */
  push?: boolean;
  /** Then open a pull request on GitHub (`deliver.pr`; implies push). The body is the run's proof summary. */
  pr?: { repo?: string; base: string; draft: boolean; title: string; body: string };
}

export interface Delivery {
  commit: string;
  summary: string;
  pullRequest?: { number: number; url: string };
}
