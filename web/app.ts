// The single page: hash routes (#/runs, #/runs/<id>, #/campaigns/<id>, #/new, #/schedules, #/fleet, #/repos,
// #/spend), each a view that stops its timers and streams when the user leaves it. The token stays in localStorage and
// goes out as an Authorization header.
import { ApiFailure, saveToken, savedToken, whoAmI } from './api.js';
import type { Principal } from './api-types.js';
import { errorLine, h, replaceChildren } from './dom.js';
import { campaignView } from './views/campaign.js';
import { fleetView } from './views/fleet.js';
import { newSpecView } from './views/newSpec.js';
import { reposView } from './views/repos.js';
import { runView } from './views/run.js';
import { runsView } from './views/runs.js';
import { schedulesView } from './views/schedules.js';
import { spendView } from './views/spend.js';
import { signInView } from './views/signin.js';
import type { ViewContext } from './view.js';

const ROUTES: [RegExp, (ctx: ViewContext) => void][] = [
  [/^#\/runs\/([^/?]+)$/, runView],
  [/^#\/campaigns\/([^/?]+)$/, campaignView],
  [/^#\/new$/, newSpecView],
  [/^#\/schedules$/, schedulesView],
  [/^#\/fleet$/, fleetView],
  [/^#\/repos$/, reposView],
  [/^#\/spend$/, spendView],
  [/^(#\/?|#\/runs(\?.*)?)?$/, runsView],
];

const root = document.getElementById('view')!;
const nav = document.getElementById('nav')!;
const who = document.getElementById('who')!;
let principal: Principal | undefined;
let leave = new AbortController();

function show(): void {
  leave.abort();
  leave = new AbortController();
  if (!principal) {
    nav.classList.add('hidden');
    return signInView(root, (p) => {
      principal = p;
      show();
    });
  }
  nav.classList.remove('hidden');
  replaceChildren(who, `${principal.name} · ${principal.role}`);
  const hash = location.hash;
  for (const [pattern, view] of ROUTES) {
    const m = pattern.exec(hash);
    if (m) return view({ root, principal, signal: leave.signal, param: m[1] && decodeURIComponent(m[1]) });
  }
  const error = h('p', { class: 'error' });
  errorLine(error, `no page ${hash}`);
  root.replaceChildren(error, h('a', { href: '#/runs' }, 'Runs'));
}

document.getElementById('sign-out')!.addEventListener('click', () => {
  saveToken(null);
  principal = undefined;
  show();
});
window.addEventListener('hashchange', show);

async function start(): Promise<void> {
  if (savedToken()) {
    try {
      principal = await whoAmI();
    } catch (err) {
      // A revoked token signs out; an unreachable server keeps the token for the next try.
      if (err instanceof ApiFailure && err.status === 401) saveToken(null);
    }
  }
  show();
}

void start();
