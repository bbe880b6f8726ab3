// The run's signals and query (workflows/messages.ts defines them).
import { log, setHandler } from '@temporalio/workflow';
import {
  DECISION_SIG_MAX,
  type BudgetRaise,
  type Decision,
  type DecisionInput,
  type ForgeStatus,
  type RunState,
} from '../../contracts/run';
import {
  SIGNAL_DESCRIPTIONS,
  approveSignal,
  budgetLimitsChangedSignal,
  cancelRequestedSignal,
  forgeStatusSignal,
  raiseBudgetSignal,
  rejectSignal,
  requestChangesSignal,
  stateQuery,
  workerLostSignal,
} from '../messages';
import type { RunContext } from './context';
import { nowIso } from './time';

/** Set before the run's first await, so early signals and queries are never lost. */
export function registerHandlers(ctx: RunContext): void {
  const { state } = ctx;
  const decide = (kind: Decision['kind']) => (arg: DecisionInput | undefined) => {
    // A run waiting for its budget may be rejected too: a reject ends either wait.
    const waits = state.status === 'awaiting_approval' || (kind === 'reject' && state.status === 'awaiting_budget');
    if (!waits || ctx.pending) {
      log.warn('decision ignored: the run is not awaiting approval', { kind, status: state.status });
      return;
    }
    ctx.pending = recorded(state, kind, arg);
  };
  setHandler(approveSignal, decide('approve'), { description: SIGNAL_DESCRIPTIONS.approve });
  setHandler(rejectSignal, decide('reject'), { description: SIGNAL_DESCRIPTIONS.reject });
  setHandler(requestChangesSignal, decide('requestChanges'), { description: SIGNAL_DESCRIPTIONS.requestChanges });
  setHandler(
    raiseBudgetSignal,
    (arg) => {
      const raise = budgetRaise(arg);
      if (state.status !== 'awaiting_budget' || ctx.pending || !raise) {
        log.warn('budget raise ignored: the run is not awaiting budget, or it raises nothing', {
          status: state.status,
        });
        return;
      }
      ctx.pending = { ...recorded(state, 'raiseBudget', arg), raise };
    },
    { description: SIGNAL_DESCRIPTIONS.raiseBudget },
  );
  setHandler(
    budgetLimitsChangedSignal,
    () => {
      if (state.status === 'awaiting_budget') ctx.limitsChanged = true;
    },
    { description: SIGNAL_DESCRIPTIONS.budgetLimitsChanged },
  );
  setHandler(
    cancelRequestedSignal,
    (arg) => {
      state.decisions.push(recorded(state, 'cancel', arg));
    },
    { description: SIGNAL_DESCRIPTIONS.cancelRequested },
  );
  setHandler(forgeStatusSignal, (status) => recordStatus(state, status), {
    description: "The forge's CI status of the run's pushed commit (sent by the forge webhook)",
  });
  setHandler(
    workerLostSignal,
    (worker) => {
      ctx.lostWorkers.add(worker);
    },
    {
      description: 'From the fleet registry: the named worker is gone; a stage bound for it is given up',
    },
  );
  setHandler(stateQuery, () => state, {
    description: 'The run: status, stage, iteration, per-stage results and timings',
  });
}

/** The signature is kept as it came (bounded), for readers holding the key to judge; the workflow cannot. */
/** A decision as the run records it: what the signal said, bounded, when, at which iteration. */
export function recorded(
  state: Pick<RunState, 'iteration'>,
  kind: Decision['kind'],
  arg: DecisionInput | undefined,
): Decision {
  const sig = typeof arg?.sig === 'string' && arg.sig.length <= DECISION_SIG_MAX ? { sig: arg.sig } : {};
  const via = arg?.via === 'forge' ? { via: arg.via } : {};
  return {
    kind,
    comment: String(arg?.comment ?? ''),
    by: String(arg?.by ?? 'temporal'),
    at: nowIso(),
    iteration: state.iteration,
    ...sig,
    ...via,
  };
}

const STATUS_STATES = new Set<ForgeStatus['state']>(['pending', 'success', 'failure', 'error']);

/**
 * A status replaces the one of its commit and context. Kept for any commit (the last 50): the forge's CI can report
 * on a pushed commit before the publish stage that pushed it has returned.
 */
function recordStatus(state: RunState, s: ForgeStatus | undefined): void {
  if (!s || typeof s.sha !== 'string' || !STATUS_STATES.has(s.state) || typeof s.context !== 'string') return;
  const status: ForgeStatus = {
    sha: s.sha.slice(0, 64),
    context: s.context.slice(0, 200),
    state: s.state,
    description: String(s.description ?? '').slice(0, 1000),
    ...(typeof s.url === 'string' ? { url: s.url.slice(0, 500) } : {}),
  };
  const others = (state.forgeStatuses ?? []).filter((x) => x.sha !== status.sha || x.context !== status.context);
  state.forgeStatuses = [...others, status].slice(-50);
}

/** What a raise adds, each amount a positive finite number; undefined when it adds nothing. */
function budgetRaise(arg: (DecisionInput & BudgetRaise) | undefined): BudgetRaise | undefined {
  const amount = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
  const tokens = amount(arg?.tokens);
  const costUsd = amount(arg?.costUsd);
  if (tokens === undefined && costUsd === undefined) return undefined;
  return {
    ...(tokens !== undefined ? { tokens: Math.round(tokens) } : {}),
    ...(costUsd !== undefined ? { costUsd } : {}),
  };
}
