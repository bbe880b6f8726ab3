import { ApiFailure, saveToken, whoAmI } from '../api.js';
import type { Principal } from '../api-types.js';
import { cardForm, errorLine, h } from '../dom.js';

/** The sign-in form: a token is checked against the API before it is kept (in localStorage). */
export function signInView(root: HTMLElement, signedIn: (principal: Principal) => void): void {
  const input = h('input', {
    id: 'token',
    type: 'password',
    autocomplete: 'current-password',
    placeholder: 'ns_…',
    required: true,
  });
  const error = h('p', { class: 'error hidden', id: 'signin-error', role: 'alert' });
  const signIn = async () => {
    const token = input.value.trim();
    try {
      const principal = await whoAmI(token);
      saveToken(token);
      signedIn(principal);
    } catch (err) {
      errorLine(error, err instanceof ApiFailure ? err : new Error(String(err)));
    }
  };
  const hint = h(
    'p',
    { class: 'hint' },
    'The token printed by "nightshift up", or one made with "nightshift token add NAME --role ROLE".',
  );
  const form = cardForm(
    { id: 'signin', submit: 'Sign in', onSubmit: signIn },
    h('h1', {}, 'Sign in'),
    h('label', { for: 'token' }, 'API token'),
    input,
    hint,
    error,
  );
  root.replaceChildren(form);
  input.focus();
}
