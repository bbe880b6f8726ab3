import { z } from 'zod';
import type { SignInput } from './proof';
import type { BudgetRaise, Checkpoint, RunInput, DecisionInput } from './run';

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

/**
 * One webhook delivery, as the API read it; `run` is the run a review or a budget raise is about (found by its pull
 * request).
 */
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
  | { decide: { runId: string; kind: 'approve' | 'requestChanges'; decision: DecisionInput } }
  | { raise: { runId: string; decision: DecisionInput & BudgetRaise } };

export const ForgeUser = z.object({ login: z.string().min(1) });

export const ForgeEventSchema = z.discriminatedUnion('kind', [
  /** An issue to work on: labelled `nightshift`, or a `/nightshift` comment on it (`delivery` names that comment). */
  z.object({
    kind: z.literal('issue'),
    issue: z.number().int().positive(),
    title: z.string(),
    body: z.string(),
    user: z.string(),
    trigger: z.enum(['label', 'comment']),
    author: z.string().optional(),
  }),
  /** A review of a pull request, or a `/nightshift fix …` comment on it: a decision for the run behind it. */
  z.object({
    kind: z.literal('review'),
    pr: z.number().int().positive(),
    decision: z.enum(['approve', 'requestChanges']),
    body: z.string(),
    user: z.string(),
  }),
  /**
   * A `/nightshift budget +5usd …` comment on a pull request: a raise of the spent budget of the run behind it. `text`
   * is what follows `budget`, read by the worker (forges/budgetComment.ts), which answers a bad amount on the forge.
   */
  z.object({
    kind: z.literal('budget'),
    pr: z.number().int().positive(),
    text: z.string(),
    user: z.string(),
  }),
  /**
   * A pull request merged by a person (`branch`: its head; `commit`: the merge's): counted by the campaign of the run
   * that opened it. The API signals the campaign; no workflow of its own.
   */
  z.object({
    kind: z.literal('merged'),
    pr: z.number().int().positive(),
    branch: z.string(),
    commit: z.string().optional(),
    user: z.string(),
  }),
  /** A commit status (the forge's CI). */
  z.object({
    kind: z.literal('status'),
    sha: z.string().regex(/^[0-9a-f]{40,64}$/),
    context: z.string(),
    state: z.enum(['pending', 'success', 'failure', 'error']),
    description: z.string(),
    url: z.string().optional(),
  }),
]);

export type ForgeEvent = z.infer<typeof ForgeEventSchema>;
