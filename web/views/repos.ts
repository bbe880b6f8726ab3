import { getJson, postJson, request } from '../api.js';
import type { RepoAddedView, RepoView } from '../api-types.js';
import { cardForm, errorLine, h, replaceChildren } from '../dom.js';
import { can, type ViewContext } from '../view.js';
import { onConfirmedClick } from './confirm.js';

/** As config/remotes.ts's FORGES; the page cannot import the server's modules. */
const FORGES = ['gitea', 'github', 'none'];

/** The repos specs can name (`GET /v1/repos`, as `nightshift repo ls`); an admin registers and removes remotes here. */
export function reposView({ root, principal, signal }: ViewContext): void {
  const list = h('ul', { class: 'repos', id: 'repos' });
  const error = h('p', { class: 'error hidden', role: 'alert', id: 'repos-error' });
  const admin = can(principal, 'admin');

  const refresh = async () => {
    try {
      const { repos } = await getJson<{ repos: RepoView[] }>('/v1/repos', signal);
      replaceChildren(
        list,
        ...(repos.length
          ? repos.map((r) => repoItem(r, admin ? remove : undefined))
          : [h('li', { class: 'empty' }, 'No repos.')]),
      );
    } catch (err) {
      if (!signal.aborted) errorLine(error, err);
    }
  };
  const remove = async (name: string) => {
    try {
      await request('DELETE', `/v1/repos/${encodeURIComponent(name)}`);
      errorLine(error, null);
    } catch (err) {
      errorLine(error, err);
    }
    await refresh();
  };

  const webhook = h('div', { class: 'card hidden', id: 'webhook', role: 'status' });
  const added = async (answer: RepoAddedView) => {
    showWebhook(webhook, answer);
    await refresh();
  };
  replaceChildren(root, h('h1', {}, 'Repos'), error, list, admin && webhook, admin && addForm(added));
  void refresh();
}

/** A repo's card: a remote's URL, forge, credential NAME and approvers, and for an admin its Remove button. */
function repoItem(r: RepoView, remove?: (name: string) => Promise<void>): HTMLLIElement {
  const details = [
    r.forge && `forge ${r.forge}`,
    r.credential && `credential ${r.credential}`,
    r.approvers?.length && `approvers ${r.approvers.join(', ')}`,
  ]
    .filter(Boolean)
    .join(' · ');
  let button: HTMLButtonElement | undefined;
  if (remove && r.kind === 'remote') {
    button = h('button', { type: 'button', class: 'danger', 'data-action': 'remove' }, 'Remove');
    onConfirmedClick(button, 'Tap again to remove', () => void remove(r.name));
  }
  return h(
    'li',
    { class: 'card', 'data-repo': r.name, 'data-kind': r.kind },
    h('span', { class: 'title' }, r.name, ' ', h('span', { class: 'status' }, r.kind)),
    r.url && h('p', { class: 'meta' }, h('code', { class: 'url' }, r.url)),
    details && h('p', { class: 'meta details' }, details),
    button && h('div', { class: 'buttons' }, button),
  );
}

/**
 * Registering a remote (`POST /v1/repos`, admin): as `nightshift repo add`; the API's one-line message on a refusal.
 */
function addForm(added: (answer: RepoAddedView) => Promise<void>): HTMLFormElement {
  const text = { autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false' };
  const name = h('input', { id: 'repo-name', ...text, required: true, placeholder: 'calc' });
  const url = h('input', {
    id: 'repo-url',
    ...text,
    inputmode: 'url',
    required: true,
    placeholder: 'https://git.example/acme/calc.git',
  });
  const forge = h('select', { id: 'repo-forge' }, ...FORGES.map((f) => h('option', { value: f }, f)));
  const credential = h('input', { id: 'repo-credential', ...text, placeholder: 'GITEA_TOKEN' });
  const approvers = h('input', { id: 'repo-approvers', ...text, placeholder: 'bob, carol' });
  const error = h('p', { class: 'error hidden', role: 'alert', id: 'add-repo-error' });
  // A double tap registers once (the second would be refused as a repo already registered).
  let busy = false;
  const add = async () => {
    if (busy) return;
    busy = true;
    const body = {
      name: name.value.trim(),
      url: url.value.trim(),
      forge: forge.value,
      ...(credential.value.trim() ? { credential: credential.value.trim() } : {}),
      approvers: approvers.value
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean),
    };
    try {
      const answer = await postJson<RepoAddedView>('/v1/repos', body);
      errorLine(error, null);
      for (const input of [name, url, credential, approvers]) input.value = '';
      await added(answer);
    } catch (err) {
      errorLine(error, err);
    } finally {
      busy = false;
    }
  };
  const fields = [
    ...field('Name', name, 'What specs name as their repo.'),
    ...field('URL', url),
    ...field('Forge', forge),
    ...field('Credential', credential, "The NAME of a secret in the server's secrets.env, never its value."),
    ...field('Approvers', approvers, 'Forge users whose approving review delivers, comma-separated.'),
  ];
  return cardForm(
    { id: 'add-repo', submit: 'Register repo', onSubmit: add },
    h('h2', {}, 'Register a remote repo'),
    ...fields,
    error,
  );
}

/** A form field: its label, the control, and a hint under it. */
function field(label: string, control: HTMLInputElement | HTMLSelectElement, hint?: string): (HTMLElement | false)[] {
  return [h('label', { for: control.id }, label), control, !!hint && h('p', { class: 'hint' }, hint)];
}

/** The webhook's URL and secret, shown this once (the API never shows the secret again); Done takes it off the page. */
function showWebhook(box: HTMLElement, { repo, webhook }: RepoAddedView): void {
  const done = h('button', { type: 'button', id: 'webhook-done' }, 'Done, I saved them');
  done.addEventListener('click', () => {
    box.replaceChildren();
    box.classList.add('hidden');
  });
  replaceChildren(
    box,
    h('h2', {}, `Webhook for ${repo.name}`),
    h(
      'p',
      { class: 'hint' },
      'Shown this once. On the forge, add a webhook to the repo with this URL and secret, content type application/json, events Issues, Issue comments, Pull request reviews and Statuses (docs/forges.md).',
    ),
    h('p', { class: 'meta' }, 'URL ', h('code', { id: 'webhook-url' }, webhook.url)),
    h('p', { class: 'meta' }, 'Secret ', h('code', { id: 'webhook-secret' }, webhook.secret)),
    h('div', { class: 'buttons' }, done),
  );
  box.classList.remove('hidden');
  box.scrollIntoView({ block: 'nearest' });
}
