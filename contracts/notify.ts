import type { RunStatus, StageName } from './run';

/** The run events webhooks hear of. */
export type RunEvent = Extract<RunStatus, 'awaiting_approval' | 'awaiting_budget' | 'succeeded' | 'failed'>;

/** What the workflow tells about an event. No receiver in here: their URLs stay out of Temporal's history. */
export interface RunNotice {
  event: RunEvent;
  runId: string;
  title: string;
  status: RunStatus;
  stage?: StageName;
  reason?: string;
  /** When it happened (workflow time): the same on every retry. */
  at: string;
}
