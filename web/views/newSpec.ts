import { request } from '../api.js';
import { h } from '../dom.js';
import { SPEC_TEMPLATE } from '../template.js';
import type { ViewContext } from '../view.js';
import { quickRunForm } from './quickRun.js';
import { idempotencyKey, specErrors } from './specErrors.js';

/**
 * A new run: the quick form (repo, title, task) first; the whole spec as YAML folded below it, for those who want it.
 */
export function newSpecView({ root, signal }: ViewContext): void {
  const advanced = h(
    'details',
    { class: 'card', id: 'advanced' },
    h('summary', {}, 'Advanced: the whole spec as YAML'),
    specEditor(),
  );
  root.replaceChildren(quickRunForm(signal), advanced);
}

/**
 * The spec editor: submitted as Markdown; a 400's issues are shown beside it, and only a started run leaves the page.
 */
function specEditor(): HTMLFormElement {
  const editor = h('textarea', {
    id: 'spec-editor',
    class: 'editor',
    spellcheck: 'false',
    autocapitalize: 'off',
    rows: '18',
  });
  editor.value = SPEC_TEMPLATE;
  const errors = specErrors();
  const submit = h('button', { class: 'primary', type: 'submit', id: 'submit-spec' }, 'Start run');
  // An edited spec is a new submission and gets a key of its own.
  let key = idempotencyKey();
  editor.addEventListener('input', () => {
    key = idempotencyKey();
  });
  const form = h('form', { id: 'new-spec' }, editor, errors.el, submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    try {
      const res = await request('POST', '/v1/runs', {
        body: editor.value,
        contentType: 'text/markdown',
        headers: { 'idempotency-key': key },
      });
      const { id } = (await res.json()) as { id: string };
      location.hash = `#/runs/${id}`;
    } catch (err) {
      errors.show(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
