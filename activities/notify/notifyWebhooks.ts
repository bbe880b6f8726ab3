import { ApplicationFailure, Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import type { Webhook } from '../../config';
import type { ActivityDeps } from '../../runtime/deps';
import type { RunNotice } from '../../contracts/notify';
import { runPageUrl } from '../../config/runPage';

const REQUEST_TIMEOUT_MS = 10_000;
const SLACK_REASON_CHARS = 300;

/**
 * POST the notice to every configured webhook that has not accepted it (a 2xx) yet. The ones that did are kept in
 * the heartbeat details, so the next attempt (the workflow's retry policy) sends only to the others.
 */
export function notifyWebhooks(deps: ActivityDeps) {
  return async (notice: RunNotice): Promise<{ delivered: number }> => {
    const ctx = Context.current();
    const accepted = new Set<string>(ctx.info.heartbeatDetails ?? []);
    const url = runPageUrl(deps.publicUrl, notice.runId);
    const failures: string[] = [];
    await Promise.all(
      deps.webhooks.map(async (hook, i) => {
        const id = receiverId(hook);
        if (accepted.has(id)) return;
        const problem = await post(hook, payload(hook, notice, url));
        if (problem) {
          failures.push(`webhook ${i + 1} (${new URL(hook.url).host}): ${problem}`);
          return;
        }
        accepted.add(id);
        ctx.heartbeat([...accepted]);
      }),
    );
    if (failures.length) throw ApplicationFailure.retryable(failures.join('; '), 'WebhookFailed');
    return { delivered: deps.webhooks.length };
  };
}

/** A digest of the URL: names the receiver in heartbeat details without putting its URL (and secret) in Temporal. */
function receiverId(hook: Webhook): string {
  return createHash('sha256').update(hook.url).digest('hex').slice(0, 16);
}

/** POST the body; undefined when the receiver accepted it, else what went wrong (without the URL). */
async function post(hook: Webhook, body: object): Promise<string | undefined> {
  try {
    const res = await fetch(hook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'nightshift' },
      body: JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    await res.body?.cancel();
    return res.ok ? undefined : `answered ${res.status}`;
  } catch (err) {
    if (err instanceof Error && err.name === 'TimeoutError')
      return `did not answer within ${REQUEST_TIMEOUT_MS / 1000}s`;
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    return `unreachable (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`;
  }
}

function payload(hook: Webhook, notice: RunNotice, url: string): object {
  if (hook.format === 'slack') return { text: slackText(notice, url) };
  return {
    event: notice.event,
    runId: notice.runId,
    title: notice.title,
    status: notice.status,
    stage: notice.stage,
    reason: notice.reason,
    url,
    at: notice.at,
  };
}

/** One readable line: `Nightshift: "Title" failed at checks: <the reason's first line> … — <link>`. */
function slackText(notice: RunNotice, url: string): string {
  const status = notice.event === 'failed' ? `failed at ${notice.stage}` : notice.status.replace('_', ' ');
  return `Nightshift: "${slackEscape(notice.title)}" ${status}${notice.reason ? `: ${slackEscape(oneLine(notice.reason))}` : ''} — ${url}`;
}

/** The first line, marked as cut when there is more (a failed check's reason goes on with its log tail). */
function oneLine(text: string): string {
  const first = text.split('\n')[0];
  return first.length > SLACK_REASON_CHARS || first !== text ? `${first.slice(0, SLACK_REASON_CHARS)} …` : first;
}

/** Slack reads &, < and > as markup. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
