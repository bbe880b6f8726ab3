// Elements are built with properties and text nodes, never innerHTML: logs, diffs and titles are untrusted text.

type Child = Node | string | null | undefined | false;
type Props = { class?: string; [attr: string]: string | boolean | undefined | ((ev: Event) => void) };

/** `h('button', {class: 'primary', onclick: go}, 'Approve')`; `on…` props are listeners, booleans set attributes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, value);
  }
  append(el, ...children);
  return el;
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) if (c) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
}

export function replaceChildren(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** A form on a card: `children`, then its primary submit button; `onSubmit` runs in place of the browser's submit. */
export function cardForm(
  form: { id: string; submit: string; onSubmit: () => Promise<void> },
  ...children: Child[]
): HTMLFormElement {
  const el = h(
    'form',
    { class: 'card', id: form.id },
    ...children,
    h('button', { class: 'primary', type: 'submit' }, form.submit),
  );
  el.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void form.onSubmit();
  });
  return el;
}

/** "3.2 s", "4 min 5 s", "1 h 2 min". */
export function duration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** "just now", "5 min ago", or the date for older times. */
export function ago(iso: string): string {
  const ms = Date.now() - Date.parse(iso);
  if (ms < 60_000) return 'just now';
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ago`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ago`;
  return new Date(iso).toLocaleString();
}

/** A status badge: `<span class="status s-awaiting_approval">awaiting approval</span>`. */
export function statusBadge(status: string): HTMLSpanElement {
  return h('span', { class: `status s-${status}`, 'data-status': status }, status.replace(/_/g, ' '));
}

/** A one-line error box, or nothing. */
export function errorLine(box: Element, err: unknown): void {
  replaceChildren(box, err ? (err instanceof Error ? err.message : String(err)) : '');
  box.classList.toggle('hidden', !err);
}
