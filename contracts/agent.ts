import type { Spec } from '../spec/schema';
import type { GatewayUsage, Checkpoint, AgentResult, ReviewFinding } from './run';
import type { Spender } from './spend';

/** One run of the agent CLI in a sandbox, as the agent and review activities start it. */
export interface CliRun {
  runId: string;
  agent: Spec['agent'];
  secrets: string[];
  limits: Spec['limits'];
  modelUsage?: GatewayUsage;
  /** Whose spend it is (the limits above the run, the spend view); absent in old histories. */
  spender?: Spender;
  timeoutMs: number;
  iteration: number;
  feedback?: string;
  prompt: string;
  /** The file the prompt is written to in the run's meta directory. */
  promptName: string;
  /** The section title in the run's log. */
  header: string;
}

export interface AgentInput {
  runId: string;
  title: string;
  task: string;
  agent: Spec['agent'];
  scope: Spec['scope'];
  checks: Spec['checks'];
  /** Absent in old histories: the default harness. */
  harness?: Spec['harness'];
  iteration: number;
  feedback?: string;
  baseCommit: string;
  /** The workspace is reset to this before the agent starts, so a retried iteration never applies twice. */
  checkpoint?: Checkpoint;
  timeoutMs: number;
  sandbox: Spec['sandbox'];
  /** Names only: values are resolved here, on the worker, and never leave it. */
  secrets: string[];
  limits: Spec['limits'];
  /** Model usage of the run's earlier iterations, which its budget counts too. */
  modelUsage?: GatewayUsage;
  spender?: Spender;
  /**
   * Why no agent runs in this iteration: a plan's integration judges the merged tasks as they are first
   * (docs/plans.md). The stage still makes the checkpoint and the diff the later stages judge.
   */
  skipAgent?: string;
}

export interface AgentOutput {
  result: AgentResult;
  diffId: string;
  checkpoint: Checkpoint;
  /** Model usage of the run so far, as the gateway metered it. */
  modelUsage?: GatewayUsage;
  /** Set when the gateway refused a request: the run's model budget is spent. */
  budgetExhausted?: string;
  /** A limit above the run was spent: when its window rolls over (epoch ms). */
  budgetUntil?: number;
}

export interface AgentReviewInput extends Omit<CliRun, 'prompt' | 'promptName' | 'header' | 'feedback'> {
  title: string;
  task: string;
  sandbox: Spec['sandbox'];
  diffId: string;
  /** The commit under review: the workspace is put there first, and back there after. */
  commit: string;
}

export interface AgentReview {
  verdict: 'approve' | 'changes';
  findings: ReviewFinding[];
  /** Artifact id of the review report (verdict, findings, the reviewer's summary, log and transcript ids). */
  reportId: string;
  modelUsage?: GatewayUsage;
  budgetExhausted?: string;
}
