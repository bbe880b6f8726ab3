import { getJson } from '../api.js';
import type { FleetView, RunStatus, WorkerView } from '../api-types.js';
import { duration, errorLine, h, replaceChildren, statusBadge } from '../dom.js';
import { every, type ViewContext } from '../view.js';

const REFRESH_MS = 3000;
const MIB = 2 ** 20;

/** What `GET /v1/fleet` and `nightshift fleet` show: a card per worker, runs per state, the queue's backlog. */
export function fleetView({ root, signal }: ViewContext): void {
  const workers = h('ul', { class: 'workers', id: 'workers' });
  const runs = h('ul', { class: 'run-counts', id: 'run-counts' });
  const queue = h('p', { class: 'meta', id: 'queue-depth' });
  const error = h('p', { class: 'error hidden', role: 'alert' });
  const heading = h('h1', {}, 'Fleet');
  root.replaceChildren(heading, error, workers, h('h2', {}, 'Runs'), runs, h('h2', {}, 'Queue'), queue);

  every(REFRESH_MS, signal, async () => {
    try {
      const fleet = await getJson<FleetView>('/v1/fleet', signal);
      errorLine(error, null);
      replaceChildren(heading, `Fleet · ${fleet.taskQueue}`);
      replaceChildren(
        workers,
        ...(fleet.workers.length
          ? fleet.workers.map(workerCard)
          : [h('li', { class: 'empty' }, 'No worker polls this queue.')]),
      );
      const counts = Object.entries(fleet.runs).filter(([, n]) => n > 0) as [RunStatus, number][];
      replaceChildren(runs, ...(counts.length ? counts.map(runCount) : [h('li', { class: 'empty' }, 'No runs yet.')]));
      const { workflowTasks, activityTasks, claims } = fleet.queueDepth;
      replaceChildren(
        queue,
        `${claims} runs waiting for a sandbox slot; ${workflowTasks} workflow tasks, ${activityTasks} activity tasks waiting for a worker`,
      );
    } catch (err) {
      if (!signal.aborted) errorLine(error, err);
    }
  });
}

/** A worker seen polling but not (yet) in the registry has only its identity and when it last polled. */
function workerCard(w: WorkerView): HTMLLIElement {
  const reported = w.at ?? w.lastSeen;
  const footer = [
    w.memoryBytes !== undefined && `${Math.round(w.memoryBytes / MIB)} MiB`,
    reported && `${w.at ? 'reported' : 'polled'} ${duration(Math.max(0, Date.now() - Date.parse(reported)))} ago`,
  ]
    .filter(Boolean)
    .join(' · ');
  return h(
    'li',
    { class: 'card', 'data-worker': w.identity },
    h('span', { class: 'title' }, w.identity),
    w.host && h('p', { class: 'meta host' }, w.host),
    w.capacity !== undefined && loadBar(w.load ?? 0, w.capacity, w.waiting ?? 0),
    w.drivers &&
      h(
        'p',
        { class: 'meta drivers' },
        'drivers',
        ...w.drivers.flatMap((d) => [' ', h('code', { 'data-driver': d }, d)]),
      ),
    w.agents &&
      h(
        'p',
        { class: 'meta agents' },
        'agents',
        ...w.agents.flatMap((a) => [
          ' ',
          h('code', { 'data-agent': a.kind }, a.version ? `${a.kind} ${a.version}` : a.kind),
        ]),
      ),
    footer && h('p', { class: 'meta' }, footer),
  );
}

/** A `<meter>`, not a styled div: a width set in a style attribute would break the page's CSP. */
function loadBar(load: number, capacity: number, waiting: number): HTMLDivElement {
  return h(
    'div',
    { class: 'load' },
    h('meter', { min: '0', max: String(capacity), value: String(load), 'aria-label': 'sandboxes in use' }),
    h('span', { class: 'load-text' }, `${load}/${capacity} sandboxes${waiting ? ` +${waiting} waiting` : ''}`),
  );
}

function runCount([status, n]: [RunStatus, number]): HTMLLIElement {
  return h('li', { 'data-count': status }, h('a', { href: `#/runs?status=${status}` }, statusBadge(status), ` ${n}`));
}
