import { postJson, request } from '../api.js';
import type { CheckView, PlanTaskView, Principal, RunStatus, RunView, StageView } from '../api-types.js';
import { duration, errorLine, h, replaceChildren, statusBadge } from '../dom.js';
import { followRunEvents } from '../sse.js';
import { can, every, type ViewContext } from '../view.js';
import { onConfirmedClick } from './confirm.js';

const FINAL: RunStatus[] = ['succeeded', 'failed', 'rejected', 'cancelled', 'timed_out'];
/** The log box keeps about this many characters; the whole log is in the proof and `nightshift logs`. */
const LOG_KEEP_CHARS = 2_000_000;

/** A run: its status, stage timeline, live log, checks, review, diff, proof and the decisions the token may make. */
export function runView({ root, principal, signal, param }: ViewContext): void {
  const id = param!;
  const header = h('div', { class: 'card', id: 'run-header' }, h('p', {}, 'Loading…'));
  const actions = h('section', { class: 'card hidden', id: 'actions' });
  const tasks = h('section', { class: 'card hidden', id: 'tasks' });
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const stream = h('span', { class: 'stream', id: 'stream' }, 'connecting…');
  const log = h('pre', { class: 'log scrollbox', id: 'log', tabindex: '0' });
  const checks = h('section', { class: 'card hidden', id: 'checks' });
  const review = h('section', { class: 'card hidden', id: 'review' });
  const diff = diffSection(id, signal);
  const proof = proofSection(id);
  root.replaceChildren(
    header,
    actions,
    tasks,
    h('section', { class: 'card' }, h('h2', {}, 'Stages'), timeline),
    h('section', { class: 'card' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Log'), stream), log),
    checks,
    review,
    diff.el,
    proof.el,
  );

  let run: RunView | undefined;
  const actionBox = actionsSection(id, principal, actions);
  every(1000, signal, async () => {
    // Running stages show their time so far.
    if (run?.stages.some((s) => s.status === 'running')) renderTimeline(timeline, run.stages);
  });
  void followRunEvents(
    id,
    {
      state(next) {
        run = next;
        renderHeader(header, next);
        renderTasks(tasks, next);
        renderTimeline(timeline, next.stages);
        renderChecks(checks, next);
        renderReview(review, next);
        actionBox.update(next);
        diff.update(next);
        proof.update(next);
      },
      log(text) {
        const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
        log.append(text);
        while ((log.textContent?.length ?? 0) > LOG_KEEP_CHARS && log.firstChild) log.firstChild.remove();
        if (atBottom) log.scrollTop = log.scrollHeight;
      },
      end(status) {
        replaceChildren(stream, `ended: ${status.replace(/_/g, ' ')}`);
        stream.className = 'stream';
      },
      connection(connected, problem) {
        replaceChildren(stream, connected ? 'live' : (problem ?? ''));
        stream.className = connected ? 'stream live' : 'stream problem';
      },
    },
    signal,
  );
}

function renderHeader(el: HTMLElement, run: RunView): void {
  replaceChildren(
    el,
    h('h1', {}, run.title),
    h(
      'p',
      { class: 'meta' },
      statusBadge(run.status),
      run.stage && !FINAL.includes(run.status) ? ` stage ${run.stage}` : '',
      // A plan's iterations are its tasks' and its integration's, each on its own page.
      run.tasks ? '' : ` · iteration ${run.iteration}/${run.maxIterations}`,
    ),
    h('p', { class: 'meta' }, h('code', {}, run.id), ' · branch ', h('code', {}, run.branch)),
    h('p', { class: 'meta' }, 'repo ', h('code', {}, run.repo)),
    run.campaign
      ? h(
          'p',
          { class: 'meta' },
          'a run of campaign ',
          h('a', { href: `#/campaigns/${run.campaign.id}` }, run.campaign.id),
        )
      : null,
    run.plan
      ? h('p', { class: 'meta' }, 'task ', h('code', {}, run.plan.task), ' of plan ', runLink(run.plan.id))
      : null,
    run.failure
      ? h('p', { class: 'error', id: 'failure' }, `failed at ${run.failure.stage}: ${run.failure.reason}`)
      : null,
  );
}

const runLink = (id: string) => h('a', { href: `#/runs/${id}`, 'data-run': id }, id);

/**
 * A plan's graph: each task indented by its depth (the longest chain of needs under it), its state (its run's status
 * while it runs), time and needs, linked to its run; the integration last, under all of them.
 */
function renderTasks(el: HTMLElement, run: RunView): void {
  el.classList.toggle('hidden', !run.tasks?.length);
  if (!run.tasks?.length) return;
  const all = [...run.tasks, ...(run.integration ? [run.integration] : [])];
  const byId = new Map(all.map((t) => [t.id, t]));
  const proposed = new Map(run.proposal?.tasks.map((t) => [t.id, t.task]));
  const depths = new Map<string, number>();
  const depth = (t: PlanTaskView): number => {
    if (!depths.has(t.id)) depths.set(t.id, Math.max(-1, ...t.needs.map((n) => depth(byId.get(n)!))) + 1);
    return depths.get(t.id)!;
  };
  const row = (t: PlanTaskView) => {
    const ms = t.startedAt ? Date.parse(t.endedAt ?? new Date().toISOString()) - Date.parse(t.startedAt) : undefined;
    const shown = t.state === 'running' && t.status ? t.status : t.state;
    const li = h(
      'li',
      { class: `task ${t.state}`, 'data-task': t.id, 'data-depth': String(depth(t)) },
      h('span', { class: 'name' }, t.id),
      statusBadge(shown),
      ms === undefined ? null : h('span', { class: 'when' }, duration(ms)),
      t.state === 'waiting' || t.state === 'skipped' ? null : runLink(t.runId),
      t.needs.length && t !== run.integration ? h('span', { class: 'needs' }, `needs ${t.needs.join(', ')}`) : null,
      t.reason ? h('span', { class: 'reason' }, t.reason) : null,
      // A proposed task's text, for the person approving the list.
      proposed.has(t.id) ? h('span', { class: 'what' }, proposed.get(t.id)!) : null,
    );
    // Through the CSSOM: the page's policy refuses style attributes.
    li.style.setProperty('--depth', String(depth(t)));
    return li;
  };
  const by =
    run.proposal && (run.proposal.by === 'agent' ? 'proposed by the agent' : `corrected by ${run.proposal.by}`);
  replaceChildren(
    el,
    h('h2', {}, 'Tasks'),
    by ? h('p', { class: 'proposal' }, by) : null,
    h('ol', { class: 'tasks', id: 'task-graph' }, ...all.map(row)),
  );
}

function renderTimeline(el: HTMLElement, stages: StageView[]): void {
  replaceChildren(
    el,
    ...stages.map((s) => {
      const ms = s.durationMs ?? (s.status === 'running' ? Date.now() - Date.parse(s.startedAt) : undefined);
      return h(
        'li',
        { class: `stage ${s.status}` },
        h('span', { class: 'name' }, `${s.stage}${s.iteration > 1 ? ` #${s.iteration}` : ''}`),
        h('span', { class: 'when' }, `${s.status}${ms === undefined ? '' : ` · ${duration(ms)}`}`),
        s.summary ? h('span', { class: 'summary' }, s.summary) : null,
      );
    }),
  );
}

function renderChecks(el: HTMLElement, run: RunView): void {
  el.classList.toggle('hidden', run.checks.length === 0);
  replaceChildren(
    el,
    h('h2', {}, 'Checks'),
    h(
      'ul',
      { class: 'checks' },
      ...run.checks.map((c) =>
        h(
          'li',
          { class: c.passed ? 'passed' : 'failed' },
          h(
            'details',
            {},
            h(
              'summary',
              {},
              `${c.passed ? '✓' : '✗'} ${c.name} · exit ${c.exitCode ?? '–'} · ${duration(c.durationMs)}`,
            ),
            ...integrityLine(c),
            h('pre', { class: 'scrollbox' }, c.logTail || '(no output)'),
          ),
        ),
      ),
    ),
  );
}

/** How the check compares with the base: its tests then and now, and whether its canary was reported failing. */
function integrityLine(c: CheckView): HTMLElement[] {
  const i = c.integrity;
  const unverified = c.unverified ? [h('p', { class: 'note' }, `UNVERIFIED: ${c.unverified}`)] : [];
  if (!i) return unverified;
  const parts = [];
  if (i.tests)
    parts.push(
      `tests run: ${i.tests.base.ran} at the base, ${i.tests.now.ran} now (${i.tests.format ?? (i.tests.source === 'junit' ? 'JUnit' : 'summary line')})`,
    );
  if (i.canary)
    parts.push(
      'off' in i.canary
        ? `canary off: ${i.canary.off}`
        : i.canary.result === 'passed'
          ? 'canary PASSED: the harness hides failures'
          : i.canary.result === 'changed'
            ? 'canary run CHANGED other tests: the harness behaves differently when the test files differ'
            : 'canary reported failing ✓',
    );
  return [
    ...(parts.length ? [h('p', { class: i.findings.length ? 'error' : 'ok' }, parts.join(' · '))] : []),
    ...unverified,
  ];
}

function renderReview(el: HTMLElement, run: RunView): void {
  el.classList.toggle('hidden', !run.review);
  if (!run.review) return;
  const { verdict, findings, notes } = run.review;
  replaceChildren(
    el,
    h('h2', {}, 'Review'),
    h(
      'p',
      { class: verdict === 'approve' ? 'ok' : 'error' },
      verdict === 'approve' ? 'No findings: the review approves.' : 'The review asks for changes.',
    ),
    h(
      'ul',
      { class: 'findings' },
      ...findings.map((f) =>
        h('li', {}, h('code', {}, f.rule), f.file ? ` ${f.file}${f.line ? `:${f.line}` : ''}` : '', ` ${f.message}`),
      ),
    ),
    ...(notes ?? []).map((n) => h('p', { class: 'note' }, `Not verified: ${n}`)),
  );
}

/** One decision: who, how it came (an unverified name or a forge user), when, and the comment. */
function decisionItem(d: RunView['decisions'][number]): HTMLElement {
  return h(
    'li',
    {},
    `${d.kind} by ${d.by}`,
    // Anyone with Temporal access can send a decision in any name: say so next to the name.
    ...(d.verified
      ? []
      : [
          ' ',
          h(
            'span',
            {
              class: 'unverified',
              title: 'Sent to Temporal directly, not through the API: the name is what the sender claimed',
            },
            '(unverified, via Temporal)',
          ),
        ]),
    ...(d.channel === 'forge'
      ? [' ', h('span', { title: "A review on the run's forge, by that forge user" }, '(via forge)')]
      : []),
    `, ${new Date(d.at).toLocaleString()}${d.comment ? `: ${d.comment}` : ''}`,
  );
}

/** What a run stopped by a limit above it waits for. */
function windowText(budget: { stoppedBy: string; until?: string }): string {
  const at = new Date(budget.until!).toLocaleString();
  return `${budget.stoppedBy}. It goes on by itself at ${at}, or when an admin changes that budget.`;
}

/**
 * Approve / request changes / reject while the run awaits approval, cancel until it ends; each only for a role that
 * may.
 */
function actionsSection(id: string, principal: Principal, el: HTMLElement) {
  const comment = h('textarea', { id: 'comment', rows: '2', placeholder: 'Comment (required to request changes)' });
  const result = h('p', { class: 'error hidden', role: 'alert' });
  // A run awaiting budget is raised by an amount in dollars (docs/budgets.md).
  const raiseUsd = h('input', { id: 'raise-usd', type: 'number', min: '0.01', step: '0.01', placeholder: '+ USD' });
  const decide = (route: string, label: string, cls: string) => {
    const button = h('button', { id: route, class: cls, type: 'button' }, label);
    const act = async () => {
      button.disabled = true;
      try {
        const amount = route === 'budget' ? { costUsd: Number(raiseUsd.value) } : {};
        await postJson(`/v1/runs/${id}/${route}`, { comment: comment.value, ...amount });
        errorLine(result, null);
        comment.value = '';
      } catch (err) {
        errorLine(result, err);
      } finally {
        button.disabled = false;
      }
    };
    if (route === 'reject' || route === 'cancel') onConfirmedClick(button, `Tap again to ${route}`, act);
    else button.addEventListener('click', act);
    return button;
  };
  const decisions = h('ul', { class: 'decisions' });
  const approve = [
    decide('approve', 'Approve', 'primary'),
    decide('request-changes', 'Request changes', ''),
    decide('reject', 'Reject', 'danger'),
  ];
  const cancel = decide('cancel', 'Cancel run', 'danger');
  const raise = h('div', { class: 'raise hidden' }, raiseUsd, decide('budget', 'Raise budget', 'primary'));
  // Stopped by a token's, a repo's or the server's budget, the run waits for its window: no raise of its own lifts it.
  const window = h('p', { class: 'hint hidden', id: 'budget-window' });
  const readOnly = h(
    'p',
    { class: 'hint', id: 'read-only' },
    `Signed in as ${principal.name} (${principal.role}): you can follow this run but not decide on it.`,
  );
  replaceChildren(
    el,
    h('h2', {}, 'Decision'),
    decisions,
    comment,
    raise,
    window,
    h('div', { class: 'buttons' }, ...approve, cancel),
    result,
    readOnly,
  );
  return {
    update(run: RunView) {
      // A plan's proposed tasks are approved (or rejected) as a run's change is.
      const onBudget = run.status === 'awaiting_budget';
      const waits = ['awaiting_approval', 'awaiting_plan_approval'].includes(run.status) || onBudget;
      const mayDecide = waits && can(principal, 'approver');
      const mayCancel = !FINAL.includes(run.status) && can(principal, 'submitter');
      // Proposed tasks are corrected as a list (PUT /v1/runs/:id/tasks), not sent back with a comment.
      const onTasks = run.status === 'awaiting_plan_approval';
      // Waiting for budget, a run is raised or rejected, not approved.
      const shown = (b: HTMLElement) => !(onTasks && b.id === 'request-changes') && !(onBudget && b.id !== 'reject');
      for (const b of approve) b.classList.toggle('hidden', !mayDecide || !shown(b));
      const waitsForWindow = onBudget && Boolean(run.budget?.until);
      raise.classList.toggle('hidden', !mayDecide || !onBudget || waitsForWindow);
      window.classList.toggle('hidden', !waitsForWindow);
      window.textContent = waitsForWindow ? windowText(run.budget!) : '';
      cancel.classList.toggle('hidden', !mayCancel);
      comment.classList.toggle('hidden', !mayDecide && !mayCancel);
      readOnly.classList.toggle('hidden', can(principal, 'approver') || FINAL.includes(run.status));
      replaceChildren(decisions, ...run.decisions.map(decisionItem));
      el.classList.toggle(
        'hidden',
        !mayDecide && !mayCancel && run.decisions.length === 0 && readOnly.classList.contains('hidden'),
      );
    },
  };
}

/** The diff, fetched when opened and again when the run's diff changes; +/- lines coloured. */
function diffSection(id: string, signal: AbortSignal) {
  const box = h('pre', { class: 'diff scrollbox hidden', id: 'diff', tabindex: '0' });
  const toggle = h('button', { id: 'show-diff', type: 'button', disabled: true }, 'Show diff');
  const error = h('p', { class: 'error hidden', role: 'alert' });
  let diffId: string | undefined;
  let shownId: string | undefined;
  const load = async () => {
    try {
      const text = await (await request('GET', `/v1/runs/${id}/diff`, { signal })).text();
      shownId = diffId;
      replaceChildren(box, ...(text ? text.split('\n').map(diffLine) : ['(empty diff)']));
      errorLine(error, null);
    } catch (err) {
      if (!signal.aborted) errorLine(error, err);
    }
  };
  toggle.addEventListener('click', async () => {
    const open = box.classList.toggle('hidden') === false;
    toggle.textContent = open ? 'Hide diff' : 'Show diff';
    if (open && shownId !== diffId) await load();
  });
  return {
    el: h('section', { class: 'card' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Diff'), toggle), error, box),
    update(run: RunView) {
      diffId = run.diffId;
      toggle.disabled = !diffId;
      if (!box.classList.contains('hidden') && shownId !== diffId) void load();
    },
  };
}

function diffLine(line: string): HTMLSpanElement {
  const kind = /^(diff |index |\+\+\+ |--- )/.test(line)
    ? 'file'
    : line.startsWith('@@')
      ? 'hunk'
      : line.startsWith('+')
        ? 'add'
        : line.startsWith('-')
          ? 'del'
          : 'ctx';
  return h('span', { class: kind }, `${line}\n`);
}

/** The signed proof of a succeeded run: download (fetch with the token, then a blob) and what is known of it. */
function proofSection(id: string) {
  const status = h('p', { id: 'proof-status' });
  const download = h('button', { id: 'download-proof', class: 'primary', type: 'button' }, 'Download proof');
  const el = h('section', { class: 'card hidden', id: 'proof' }, h('h2', {}, 'Proof'), status, download);
  let proofId = '';
  download.addEventListener('click', async () => {
    try {
      const res = await request('GET', `/v1/runs/${id}/proof`);
      const blob = await res.blob();
      const name =
        /filename="?([^";]+)"?/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `${id}-proof.tar.gz`;
      // The artifact id is the bundle's sha256; a download that hashes to it is the bundle the server signed.
      const digest = crypto.subtle ? hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())) : undefined;
      const check =
        digest === undefined
          ? 'not checked here (needs HTTPS)'
          : digest === proofId
            ? 'its sha256 matches the run’s proof id'
            : `its sha256 ${digest.slice(0, 12)}… does NOT match the run’s proof id`;
      replaceChildren(
        status,
        `Downloaded ${name} (${Math.ceil(blob.size / 1024)} KB); ${check}. Verify its signature offline: npx nightshift verify ${name} --key nightshift.pub`,
      );
      const a = h('a', { href: URL.createObjectURL(blob), download: name });
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
    } catch (err) {
      replaceChildren(status, (err as Error).message);
    }
  });
  return {
    el,
    update(run: RunView) {
      el.classList.toggle('hidden', !run.proofId);
      if (!run.proofId || run.proofId === proofId) return;
      proofId = run.proofId;
      replaceChildren(
        status,
        `Signed after approval: sha256 ${proofId.slice(0, 12)}…, final commit ${run.finalCommit?.slice(0, 12) ?? '–'}.`,
      );
    },
  };
}

function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}
