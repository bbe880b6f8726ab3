import { getJson, postJson } from '../api.js';
import type { CampaignRepoState, CampaignView } from '../api-types.js';
import { errorLine, h, replaceChildren, statusBadge } from '../dom.js';
import { can, every, type ViewContext } from '../view.js';

const REFRESH_MS = 3000;
const OPEN: CampaignRepoState[] = ['queued', 'running', 'awaiting_approval'];
const SVG = 'http://www.w3.org/2000/svg';

/** A campaign: its counts, the burndown (repos still open over time), a line per repo, and its batch actions. */
export function campaignView({ root, principal, signal, param }: ViewContext): void {
  const id = param!;
  const header = h('div', { class: 'card', id: 'campaign-header' }, h('p', {}, 'Loading…'));
  const burndown = h('section', { class: 'card', id: 'burndown' });
  const repos = h('ol', { class: 'tasks', id: 'campaign-repos' });
  const error = h('p', { class: 'error hidden', role: 'alert' });
  const act = (route: string, label: string) => {
    const button = h('button', { id: `campaign-${route}`, type: 'button', class: 'hidden' }, label);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await postJson(`/v1/campaigns/${id}/${route}`, {});
        errorLine(error, null);
      } catch (err) {
        errorLine(error, err);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  };
  const approve = act('approve', 'Approve all waiting');
  const retry = act('retry', 'Retry the failed');
  root.replaceChildren(
    header,
    h('div', { class: 'buttons' }, approve, retry),
    error,
    burndown,
    h('section', { class: 'card' }, h('h2', {}, 'Repos'), repos),
  );
  every(REFRESH_MS, signal, async () => {
    try {
      const c = await getJson<CampaignView>(`/v1/campaigns/${encodeURIComponent(id)}`, signal);
      renderHeader(header, c);
      renderBurndown(burndown, c);
      replaceChildren(repos, ...c.repos.map(repoRow));
      approve.classList.toggle(
        'hidden',
        !(c.approvalMode === 'batch' && c.counts.awaiting_approval > 0 && can(principal, 'approver')),
      );
      retry.classList.toggle('hidden', !(c.counts.failed > 0 && can(principal, 'submitter')));
    } catch (err) {
      if (!signal.aborted) errorLine(error, err);
    }
  });
}

function renderHeader(el: HTMLElement, c: CampaignView): void {
  // `merged` among them: a count of succeeded repos, shown as a state's.
  const counts = Object.entries(c.counts).filter(([, n]) => n > 0);
  replaceChildren(
    el,
    h('h1', {}, c.title),
    h('p', {}, statusBadge(c.status), ` ${c.repos.length} repos · concurrency ${c.concurrency} · ${c.approvalMode}`),
    h(
      'ul',
      { class: 'run-counts', id: 'campaign-counts' },
      ...counts.map(([s, n]) => h('li', { 'data-state': s }, statusBadge(s), ` ${n}`)),
    ),
    c.unattended === null ? null : h('p', { class: 'meta' }, `${Math.round(c.unattended * 100)}% unattended`),
  );
}

/** Repos still open (queued, running, awaiting approval) over time: a line that falls to zero when all have ended. */
function renderBurndown(el: HTMLElement, c: CampaignView): void {
  const points = c.history.map((e) => [Date.parse(e.at), OPEN.reduce((a, s) => a + e.counts[s], 0)] as const);
  const [t0, t1] = [points[0]?.[0] ?? 0, points.at(-1)?.[0] ?? 1];
  const [width, height] = [320, 120];
  const x = (t: number) => (t1 > t0 ? ((t - t0) / (t1 - t0)) * width : 0).toFixed(1);
  const y = (open: number) => (height - (open / Math.max(1, c.repos.length)) * height).toFixed(1);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `repos still open over time: ${points.at(-1)?.[1] ?? 0} of ${c.repos.length} now`);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', points.map(([t, open]) => `${x(t)},${y(open)}`).join(' '));
  line.setAttribute('class', 'burndown-line');
  svg.append(line);
  replaceChildren(el, h('h2', {}, 'Burndown'), svg);
}

function repoRow(r: CampaignView['repos'][number]): HTMLLIElement {
  return h(
    'li',
    { class: `task ${r.state}`, 'data-repo': r.repo, 'data-state': r.state },
    h('span', { class: 'name' }, r.repo),
    statusBadge(r.state),
    r.attempts > 1 ? h('span', { class: 'when' }, `attempt ${r.attempts}`) : null,
    r.attempts > 0 ? h('a', { href: `#/runs/${r.runId}`, 'data-run': r.runId }, r.runId) : null,
    r.pullRequest ? h('a', { href: r.pullRequest.url, class: 'pr' }, `PR #${r.pullRequest.number}`) : null,
    r.merged ? h('span', { class: 'when', title: r.merged.at }, `merged by ${r.merged.by}`) : null,
    r.reason ? h('span', { class: 'reason' }, r.reason) : null,
  );
}
