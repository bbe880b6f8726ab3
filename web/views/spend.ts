import { getJson } from '../api.js';
import type { SpendTotalsView, SpendView } from '../api-types.js';
import { errorLine, h, replaceChildren } from '../dom.js';
import { every, type ViewContext } from '../view.js';

const REFRESH_MS = 10_000;

/** "$0.42", or to the micro-dollar when less than a cent (a few requests to a cheap model). */
function usd(amount: number): string {
  return `$${amount.toFixed(amount && amount < 0.01 ? 6 : 2)}`;
}

function usage(t: SpendTotalsView): string {
  return `${t.requests} request${t.requests === 1 ? '' : 's'} · ${t.inputTokens} tokens in, ${t.outputTokens} out`;
}

/**
 * What `GET /v1/spend` and `nightshift spend` show (the token's own spend; an admin's, everyone's): totals by UTC day,
 * each with its models, and by model.
 */
export function spendView({ root, signal }: ViewContext): void {
  const total = h('p', { class: 'meta', id: 'spend-total' });
  const days = h('ul', { class: 'spend', id: 'spend-days' });
  const models = h('ul', { class: 'spend', id: 'spend-models' });
  const error = h('p', { class: 'error hidden', role: 'alert' });
  root.replaceChildren(
    h('h1', {}, 'Spend'),
    error,
    total,
    h('h2', {}, 'By day'),
    days,
    h('h2', {}, 'By model'),
    models,
  );

  every(REFRESH_MS, signal, async () => {
    try {
      const [byDay, byModel] = await Promise.all([
        getJson<SpendView>('/v1/spend?by=day', signal),
        getJson<SpendView>('/v1/spend?by=model', signal),
      ]);
      errorLine(error, null);
      replaceChildren(total, `${usd(byDay.total.costUsd)} in all · ${usage(byDay.total)}`);
      // Newest day first: the one a person looks for.
      replaceChildren(days, ...listOf([...byDay.groups].reverse(), true));
      replaceChildren(models, ...listOf(byModel.groups, false));
    } catch (err) {
      if (!signal.aborted) errorLine(error, err);
    }
  });
}

function listOf(groups: SpendView['groups'], withModels: boolean): HTMLLIElement[] {
  if (!groups.length) return [h('li', { class: 'empty' }, 'No model spend yet.')];
  return groups.map((g) =>
    h(
      'li',
      { class: 'card', 'data-key': g.key },
      h('span', { class: 'title' }, g.key, ' ', h('span', { class: 'cost' }, usd(g.costUsd))),
      h('p', { class: 'meta' }, usage(g)),
      withModels &&
        h(
          'ul',
          { class: 'spend-models' },
          ...Object.entries(g.models).map(([model, t]) =>
            h('li', { class: 'meta', 'data-model': model }, h('code', {}, model), ` ${usd(t.costUsd)} · ${usage(t)}`),
          ),
        ),
    ),
  );
}
