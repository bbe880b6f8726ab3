import { getJson, postJson, request } from '../api.js';
import type { ScheduleView } from '../api-types.js';
import { cardForm, errorLine, h, replaceChildren } from '../dom.js';
import { SPEC_TEMPLATE } from '../template.js';
import { can, every, type ViewContext } from '../view.js';
import { onConfirmedClick } from './confirm.js';
import { specErrors } from './specErrors.js';

const REFRESH_MS = 5000;

/** Recurring specs (Temporal Schedules): the list with trigger / pause / delete, and a form to add one. */
export function schedulesView({ root, principal, signal }: ViewContext): void {
  const list = h('ul', { class: 'schedules', id: 'schedules' });
  const error = h('p', { class: 'error hidden', role: 'alert' });
  const mayChange = can(principal, 'submitter');

  const refresh = async () => {
    try {
      const { schedules } = await getJson<{ schedules: ScheduleView[] }>('/v1/schedules', signal);
      replaceChildren(
        list,
        ...(schedules.length ? schedules.map(item) : [h('li', { class: 'empty' }, 'No schedules.')]),
      );
    } catch (err) {
      if (!signal.aborted) errorLine(error, err);
    }
  };
  const act = async (path: string, method = 'POST') => {
    try {
      await (method === 'POST' ? postJson(path) : request(method, path));
      errorLine(error, null);
    } catch (err) {
      errorLine(error, err);
    }
    await refresh();
  };

  function item(s: ScheduleView): HTMLLIElement {
    const path = `/v1/schedules/${encodeURIComponent(s.id)}`;
    const buttons = h('div', { class: 'buttons' });
    if (mayChange) {
      const trigger = h('button', { type: 'button', 'data-action': 'trigger' }, 'Run now');
      trigger.addEventListener('click', () => act(`${path}/trigger`));
      const pause = h(
        'button',
        { type: 'button', 'data-action': s.paused ? 'unpause' : 'pause' },
        s.paused ? 'Resume' : 'Pause',
      );
      pause.addEventListener('click', () => act(`${path}/${s.paused ? 'unpause' : 'pause'}`));
      const remove = h('button', { type: 'button', class: 'danger', 'data-action': 'delete' }, 'Delete');
      onConfirmedClick(remove, 'Tap again to delete', () => act(path, 'DELETE'));
      buttons.append(trigger, pause, remove);
    }
    return h(
      'li',
      { class: 'card', 'data-schedule': s.id },
      h('span', { class: 'title' }, s.title || s.id),
      h(
        'p',
        { class: 'meta' },
        h('code', {}, s.cron),
        ` · ${s.id} · `,
        s.paused
          ? h('strong', {}, 'paused')
          : s.nextRunAt
            ? `next ${new Date(s.nextRunAt).toLocaleString()}`
            : 'no next run',
      ),
      s.recentRuns.length
        ? h(
            'p',
            { class: 'meta' },
            'recent: ',
            ...s.recentRuns.slice(-3).flatMap((id) => [h('a', { href: `#/runs/${id}` }, id), ' ']),
          )
        : null,
      buttons,
    );
  }

  replaceChildren(root, h('h1', {}, 'Schedules'), error, list, mayChange && addForm(refresh));
  every(REFRESH_MS, signal, refresh);
}

function addForm(added: () => Promise<void>): HTMLFormElement {
  const id = h('input', { id: 'schedule-id', placeholder: 'nightly-deps (optional)', autocapitalize: 'off' });
  const cron = h('input', { id: 'schedule-cron', placeholder: '0 6 * * 1-5', required: true, autocapitalize: 'off' });
  const paused = h('input', { id: 'schedule-paused', type: 'checkbox' });
  const spec = h('textarea', {
    id: 'schedule-spec',
    class: 'editor',
    rows: '12',
    spellcheck: 'false',
    autocapitalize: 'off',
  });
  spec.value = SPEC_TEMPLATE;
  const errors = specErrors();
  const add = async () => {
    try {
      await postJson('/v1/schedules', {
        ...(id.value.trim() ? { id: id.value.trim() } : {}),
        cron: cron.value,
        spec: spec.value,
        specFormat: 'markdown',
        paused: paused.checked,
      });
      errors.show(null);
      id.value = '';
      await added();
    } catch (err) {
      errors.show(err);
    }
  };
  const fields = [
    h('label', { for: 'schedule-id' }, 'Id'),
    id,
    h('label', { for: 'schedule-cron' }, 'Cron (UTC)'),
    cron,
    h('label', { class: 'check' }, paused, ' start paused'),
    h('label', { for: 'schedule-spec' }, 'Spec'),
    spec,
  ];
  return cardForm(
    { id: 'add-schedule', submit: 'Add schedule', onSubmit: add },
    h('h2', {}, 'Add a schedule'),
    ...fields,
    errors.el,
  );
}
