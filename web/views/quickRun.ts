import { ApiFailure, getJson, request } from '../api.js';
import type { RepoDefaultsView, RepoView } from '../api-types.js';
import { h, replaceChildren } from '../dom.js';
import { idempotencyKey, specErrors } from './specErrors.js';

const SOURCES: Record<RepoDefaultsView['source'], string> = {
  '.nightshift.yml': "from the repo's .nightshift.yml",
  server: "the server's defaults (the repo has no .nightshift.yml)",
  'built-in': 'the built-in defaults (no .nightshift.yml, no server defaults)',
};

/**
 * A run without YAML, for a phone: a repo, a title, the task in plain words. The rest of the spec is the repo's
 * defaults, shown folded; edited, they go along as overrides (the server checks they still name the same repo).
 */
export function quickRunForm(signal: AbortSignal): HTMLFormElement {
  // Busy until the list of repos is in: a test (or a screen reader) knows which field it is talking to.
  const field = h('div', { class: 'repo-field', 'aria-busy': 'true' }, repoInput());
  const { title, task, overrides } = quickRunFields();
  const source = h('p', { class: 'hint', id: 'defaults-source' }, 'Pick a repo to see its settings.');
  const defaults = h('details', { id: 'quick-defaults' }, h('summary', {}, 'Settings'), overrides);
  const errors = specErrors();
  const submit = h('button', { class: 'primary', type: 'submit', id: 'submit-quick' }, 'Start run');
  let edited = false;
  let key = idempotencyKey();
  const form = h(
    'form',
    { class: 'card', id: 'quick-run' },
    h('h1', {}, 'New run'),
    h('label', { for: 'quick-repo' }, 'Repo'),
    field,
    h('label', { for: 'quick-title' }, 'Title'),
    title,
    h('label', { for: 'quick-task' }, 'Task'),
    task,
    source,
    defaults,
    errors.el,
    submit,
  );
  const repo = () => (form.querySelector('#quick-repo') as HTMLInputElement | HTMLSelectElement).value.trim();

  const loadDefaults = async () => {
    const name = repo();
    edited = false;
    overrides.value = '';
    if (!name) return replaceChildren(source, 'Pick a repo to see its settings.');
    try {
      const d = await getJson<RepoDefaultsView>(`/v1/repos/${encodeURIComponent(name)}/defaults`, signal);
      if (name !== repo()) return;
      overrides.value = d.yaml;
      replaceChildren(source, `Settings ${SOURCES[d.source]}; open them to change them for this run.`);
      source.classList.remove('error');
    } catch (err) {
      if (signal.aborted) return;
      replaceChildren(source, err instanceof Error ? err.message : String(err));
      source.classList.add('error');
    }
  };
  form.addEventListener('change', (ev) => {
    if ((ev.target as Element).id === 'quick-repo') void loadDefaults();
  });
  form.addEventListener('input', (ev) => {
    if (ev.target === overrides) edited = true;
    // Anything changed is a new submission; a double tap on the same one starts one run.
    key = idempotencyKey();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    try {
      const body = {
        repo: repo(),
        task: task.value,
        ...(title.value.trim() ? { title: title.value } : {}),
        ...(edited ? { overrides: overrides.value } : {}),
      };
      const res = await request('POST', '/v1/runs/quick', {
        body: JSON.stringify(body),
        headers: { 'idempotency-key': key },
      });
      location.hash = `#/runs/${((await res.json()) as { id: string }).id}`;
    } catch (err) {
      errors.show(err);
      // Issues name lines in the overrides: show them beside it.
      if (err instanceof ApiFailure && err.issues.some((i) => i.line)) defaults.open = true;
    } finally {
      submit.disabled = false;
    }
  });
  void offerRepos(field, signal).then((offered) => {
    field.setAttribute('aria-busy', 'false');
    if (offered) return loadDefaults();
  });
  return form;
}

/** The form's own fields: the title, the task, and the repo's defaults as editable overrides. */
function quickRunFields() {
  const title = h('input', {
    id: 'quick-title',
    name: 'title',
    autocomplete: 'off',
    maxlength: '200',
    placeholder: "The task's first line if empty",
  });
  const task = h('textarea', {
    id: 'quick-task',
    name: 'task',
    rows: '5',
    required: true,
    placeholder: 'What should the agent do?',
  });
  const overrides = h('textarea', {
    id: 'quick-overrides',
    class: 'editor',
    spellcheck: 'false',
    autocapitalize: 'off',
    rows: '10',
  });
  return { title, task, overrides };
}

function repoInput(): HTMLInputElement {
  return h('input', {
    id: 'quick-repo',
    name: 'repo',
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: 'false',
    required: true,
    placeholder: 'A repo name, e.g. billing',
  });
}

/**
 * The repos the token may use, as a list to pick from; a server without `GET /v1/repos` (or none listed) keeps the text
 * field.
 */
async function offerRepos(field: HTMLElement, signal: AbortSignal): Promise<boolean> {
  let repos: RepoView[];
  try {
    const body = await getJson<{ repos: RepoView[] } | RepoView[]>('/v1/repos', signal);
    repos = Array.isArray(body) ? body : body.repos;
  } catch {
    return false;
  }
  if (!Array.isArray(repos) || repos.length === 0 || signal.aborted) return false;
  // What was typed while the list loaded is kept: picked from the list, or the text field stays if it is not there.
  const typed = (field.querySelector('#quick-repo') as HTMLInputElement).value.trim();
  if (typed && !repos.some((r) => r.name === typed)) return false;
  const select = h(
    'select',
    { id: 'quick-repo', name: 'repo', required: true },
    ...repos.map((r) =>
      h('option', { value: r.name }, r.kind === 'remote' ? `${r.name} (${r.forge ?? 'remote'})` : r.name),
    ),
  );
  if (typed) select.value = typed;
  field.replaceChildren(select);
  return true;
}
