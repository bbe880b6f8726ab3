import { getJson } from '../api.js';
import type { RunStatus, RunSummaryView } from '../api-types.js';
import { ago, errorLine, h, replaceChildren, statusBadge } from '../dom.js';
import { every, type ViewContext } from '../view.js';

/** In pipeline order, as the API's status filter accepts them. */
const RUN_STATUSES: RunStatus[] = [
  'queued',
  'planning',
  'awaiting_plan_approval',
  'provisioning',
  'agent',
  'checking',
  'reviewing',
  'running_tasks',
  'awaiting_approval',
  'awaiting_budget',
  'delivering',
  'succeeded',
  'failed',
  'rejected',
  'cancelled',
  'timed_out',
];

const REFRESH_MS = 3000;

/** The runs, newest first, refreshed every few seconds; the filter is kept in the URL (#/runs?status=…). */
export function runsView({ root, signal }: ViewContext): void {
  const current = new URLSearchParams(location.hash.split('?')[1] ?? '').get('status') ?? '';
  const filter = h(
    'select',
    { id: 'status-filter', 'aria-label': 'status' },
    h('option', { value: '' }, 'all statuses'),
    ...RUN_STATUSES.map((s) => h('option', { value: s }, s.replace(/_/g, ' '))),
  );
  filter.value = current;
  filter.addEventListener('change', () => {
    location.hash = filter.value ? `#/runs?status=${filter.value}` : '#/runs';
  });
  const list = h('ul', { class: 'runs', id: 'runs' });
  const error = h('p', { class: 'error hidden', role: 'alert' });
  root.replaceChildren(h('div', { class: 'toolbar' }, h('h1', {}, 'Runs'), filter), error, list);

  every(REFRESH_MS, signal, async () => {
    try {
      const { runs } = await getJson<{ runs: RunSummaryView[] }>(
        `/v1/runs?limit=50${current ? `&status=${current}` : ''}`,
        signal,
      );
      errorLine(error, null);
      replaceChildren(
        list,
        ...(runs.length
          ? runs.map(runItem)
          : [h('li', { class: 'empty' }, current ? `No ${current.replace(/_/g, ' ')} runs.` : 'No runs yet.')]),
      );
    } catch (err) {
      if (!signal.aborted) errorLine(error, err);
    }
  });
}

function runItem(run: RunSummaryView): HTMLLIElement {
  return h(
    'li',
    {},
    h(
      'a',
      { class: 'run-link', href: `#/runs/${run.id}`, 'data-run': run.id },
      h('span', { class: 'title' }, run.title || run.id),
      h('span', { class: 'meta' }, statusBadge(run.status), ` ${run.id} · ${ago(run.startedAt)}`),
    ),
  );
}
