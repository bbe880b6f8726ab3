import { ApiFailure } from '../api.js';
import { errorLine, h, replaceChildren } from '../dom.js';

/** A spec editor's error area: a 400's issues, each with its field and line, else the API's one-line message. */
export function specErrors(): { el: HTMLElement; show(err: unknown): void } {
  const message = h('p', { class: 'error hidden', role: 'alert' });
  const list = h('ul', { class: 'issues' });
  const el = h('div', { class: 'spec-errors' }, message, list);
  return {
    el,
    show(err) {
      const issues = err instanceof ApiFailure ? err.issues : [];
      // The issues say it all; the one-line message is for errors without them (a 403, a network failure).
      errorLine(message, issues.length ? null : err);
      replaceChildren(
        list,
        ...issues.map((i) =>
          h(
            'li',
            {},
            i.line ? h('span', { class: 'line' }, `line ${i.line}`) : null,
            h('code', {}, i.field || 'spec'),
            ` ${i.message}`,
          ),
        ),
      );
    },
  };
}

/** A random Idempotency-Key, so a double tap or a retry on a flaky phone connection starts one run, not two. */
export function idempotencyKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
}
