// The run's signals and query (workflows/messages.ts defines them).
import { log, setHandler } from '@temporalio/workflow';
import { DECISION_SIG_MAX, SIGNAL_DESCRIPTIONS, approveSignal, cancelRequestedSignal, rejectSignal, requestChangesSignal, stateQuery } from '../messages';
import type { Decision, DecisionInput, RunState } from '../types';
import type { RunContext } from './context';
import { nowIso } from './time';

/** Set before the run's first await, so early signals and queries are never lost. */
export function registerHandlers(ctx: RunContext): void {
  const { state } = ctx;
  const decide = (kind: Decision['kind']) => (arg: DecisionInput | undefined) => {
    if (state.status !== 'awaiting_approval' || ctx.pending) {
      log.warn('decision ignored: the run is not awaiting approval', { kind, status: state.status });
      return;
    }
    ctx.pending = recorded(state, kind, arg);
  };
  setHandler(approveSignal, decide('approve'), { description: SIGNAL_DESCRIPTIONS.approve });
  setHandler(rejectSignal, decide('reject'), { description: SIGNAL_DESCRIPTIONS.reject });
  setHandler(requestChangesSignal, decide('requestChanges'), { description: SIGNAL_DESCRIPTIONS.requestChanges });
  setHandler(cancelRequestedSignal, (arg) => {
    state.decisions.push(recorded(state, 'cancel', arg));
  }, { description: SIGNAL_DESCRIPTIONS.cancelRequested });
  setHandler(stateQuery, () => state, { description: 'The run: status, stage, iteration, per-stage results and timings' });
}

/** The signature is kept as it came (bounded), for readers holding the key to judge; the workflow cannot. */
function recorded(state: RunState, kind: Decision['kind'], arg: DecisionInput | undefined): Decision {
  const sig = typeof arg?.sig === 'string' && arg.sig.length <= DECISION_SIG_MAX ? { sig: arg.sig } : {};
  return { kind, comment: String(arg?.comment ?? ''), by: String(arg?.by ?? 'temporal'), at: nowIso(), iteration: state.iteration, ...sig };
}
