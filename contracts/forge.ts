import type { SignInput } from './proof';
import type { Checkpoint, RunInput, DecisionInput } from './run';
import type { ForgeEvent } from '../forges/webhook';

/** The run's commits to its forge for review: signed, pushed, and the pull request opened. */
export interface PublishInput extends SignInput {
  base: string;
  title: string;
  body: string;
  draft: boolean;
  /** The issue the run was started from: told of the pull request when it is opened. */
  issue?: number;
}

export interface Published {
  checkpoint: Checkpoint;
  pullRequest: { number: number; url: string };
  summary: string;
}

/** One webhook delivery, as the API read it; `run` is the run a review is about (found by its pull request). */
export interface ForgeEventInput {
  repo: string;
  event: ForgeEvent;
  /** The id the run gets, when the event starts one: fixed by the API from the delivery (or the issue). */
  newRunId: string;
  run?: { id: string; iteration: number };
}

export type ForgeAction =
  | { ignored: string; tell?: { issue: number; body: string } }
  | { start: { runId: string; run: RunInput; issue: number; link: string } }
  | { decide: { runId: string; kind: 'approve' | 'requestChanges'; decision: DecisionInput } };
