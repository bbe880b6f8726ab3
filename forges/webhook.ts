// A forge's webhook delivery: its signature checked, then read into the few events that drive a run. Gitea (and
// Forgejo) and GitHub send much the same JSON; where they differ, both spellings are read.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { type ForgeEvent, ForgeUser } from '../contracts/forge';

/**
 * The word that puts a run on an issue: the label's name, and the comment command (`/nightshift`, `/nightshift fix …`,
 * `/nightshift budget +5 …`).
 */
export const NIGHTSHIFT_LABEL = 'nightshift';

/**
 * Whether `body` was signed with `secret`: Gitea's `X-Gitea-Signature` (hex HMAC-SHA256) or GitHub's
 * `X-Hub-Signature-256` (`sha256=` and the same), compared in constant time.
 */
export function signatureValid(body: string, secret: string, header: (name: string) => string | undefined): boolean {
  const given =
    header('x-hub-signature-256')?.replace(/^sha256=/, '') ??
    header('x-gitea-signature') ??
    header('x-forgejo-signature');
  if (!given || !/^[0-9a-f]{64}$/i.test(given)) return false;
  const expected = createHmac('sha256', secret).update(body, 'utf8').digest();
  return timingSafeEqual(expected, Buffer.from(given, 'hex'));
}

/** The delivery's id (the forge's, for a replayed one is sent with the same). */
export function deliveryId(header: (name: string) => string | undefined): string | undefined {
  const id = header('x-gitea-delivery') ?? header('x-forgejo-delivery') ?? header('x-github-delivery');
  return id && /^[\x21-\x7e]{1,200}$/.test(id) ? id : undefined;
}

/**
 * The event as Nightshift reads it, or why it is none of its business. Gitea's (and Forgejo's) event type is read
 * first: it names a review's kind (`pull_request_review_approved`), where its plain event and its GitHub-style
 * header say less.
 */
export function readForgeEvent(
  header: (name: string) => string | undefined,
  payload: unknown,
): ForgeEvent | { ignored: string } {
  const name = header('x-gitea-event-type') ?? header('x-forgejo-event-type') ?? header('x-github-event') ?? '';
  const read = READERS[name];
  if (!read) return { ignored: `event ${JSON.stringify(name.slice(0, 60))} does not drive runs` };
  try {
    return read(payload) ?? { ignored: `this ${name} event does not drive runs` };
  } catch (err) {
    if (err instanceof z.ZodError) return { ignored: `a ${name} event without ${err.issues[0].path.join('.')}` };
    throw err;
  }
}

const Issue = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().nullish(),
  pull_request: z.unknown().optional(),
  user: ForgeUser.nullish(),
});
/** Who wrote the issue's text: not who started the run from it (docs/security.md). */
const author = (issue: z.infer<typeof Issue>) => (issue.user ? { author: issue.user.login } : {});
const IssuesPayload = z.object({
  action: z.string(),
  issue: Issue,
  label: z.object({ name: z.string() }).nullish(),
  sender: ForgeUser,
});
const CommentPayload = z.object({
  action: z.string(),
  issue: Issue,
  comment: z.object({ body: z.string() }),
  sender: ForgeUser,
  is_pull: z.boolean().optional(),
});
const ReviewPayload = z.object({
  action: z.string().optional(),
  pull_request: z.object({ number: z.number().int().positive() }),
  // GitHub: review.state; Gitea: review.type, and the event's name says which.
  review: z
    .object({
      state: z.string().optional(),
      type: z.string().optional(),
      body: z.string().nullish(),
      content: z.string().nullish(),
    })
    .nullish(),
  sender: ForgeUser,
});
const PullRequestPayload = z.object({
  action: z.string(),
  pull_request: z.object({
    number: z.number().int().positive(),
    merged: z.boolean().nullish(),
    head: z.object({ ref: z.string() }),
    merge_commit_sha: z.string().nullish(),
    merged_by: ForgeUser.nullish(),
  }),
  sender: ForgeUser,
});
const StatusPayload = z.object({
  sha: z.string(),
  state: z.string(),
  context: z.string(),
  description: z.string().nullish(),
  target_url: z.string().nullish(),
});

const COMMAND = /^\/nightshift(?:\s+(fix|budget)\b)?([\s\S]*)$/;

type Reading = ForgeEvent | { ignored: string } | undefined;

const READERS: Record<string, (payload: unknown) => Reading> = {
  issues: labelled,
  issue_label: labelled,
  issue_comment: commented,
  // Gitea's type for a comment on a pull request.
  pull_request_comment: commented,
  pull_request_review: (payload) => review(payload, ''),
  pull_request_review_approved: (payload) => review(payload, 'approved'),
  pull_request_review_rejected: (payload) => review(payload, 'changes_requested'),
  pull_request: merged,
  status(payload) {
    const p = StatusPayload.parse(payload);
    // Gitea folds `warning` into a failure too.
    const state =
      p.state === 'warning'
        ? 'failure'
        : (['pending', 'success', 'failure', 'error'] as const).find((s) => s === p.state);
    if (!state || !/^[0-9a-f]{40,64}$/.test(p.sha)) return undefined;
    return {
      kind: 'status',
      sha: p.sha,
      context: p.context,
      state,
      description: p.description ?? '',
      ...(p.target_url ? { url: p.target_url } : {}),
    };
  },
};

function labelled(payload: unknown): ForgeEvent | undefined {
  const p = IssuesPayload.parse(payload);
  // GitHub says which label was added; Gitea (`label_updated`) sends the issue with all its labels.
  const labels = (payload as { issue?: { labels?: { name?: unknown }[] | null } }).issue?.labels ?? [];
  const isLabelled =
    p.action === 'labeled'
      ? p.label?.name === NIGHTSHIFT_LABEL
      : p.action === 'label_updated' && labels.some((l) => l.name === NIGHTSHIFT_LABEL);
  if (!isLabelled || p.issue.pull_request) return undefined;
  return {
    kind: 'issue',
    issue: p.issue.number,
    title: p.issue.title,
    body: p.issue.body ?? '',
    user: p.sender.login,
    trigger: 'label',
    ...author(p.issue),
  };
}

function commented(payload: unknown): Reading {
  const p = CommentPayload.parse(payload);
  const command = COMMAND.exec(p.comment.body.trim());
  if (p.action !== 'created' || !command) return undefined;
  const onPull = p.is_pull === true || p.issue.pull_request != null;
  if (command[1] === 'budget')
    // An issue's run is found by its pull request only (the issue is in no run's search attributes).
    return onPull
      ? { kind: 'budget', pr: p.issue.number, text: command[2].trim(), user: p.sender.login }
      : { ignored: "a run's budget is raised on its pull request, not on its issue" };
  if (onPull)
    return command[1]
      ? {
          kind: 'review',
          pr: p.issue.number,
          decision: 'requestChanges',
          body: command[2].trim(),
          user: p.sender.login,
        }
      : undefined;
  return command[1]
    ? undefined
    : {
        kind: 'issue',
        issue: p.issue.number,
        title: p.issue.title,
        body: p.issue.body ?? '',
        user: p.sender.login,
        trigger: 'comment',
        ...author(p.issue),
      };
}

function review(payload: unknown, kindFromEvent: string): ForgeEvent | undefined {
  const p = ReviewPayload.parse(payload);
  const state = (kindFromEvent || p.review?.state || p.review?.type || '').toLowerCase();
  const decision =
    state === 'approved'
      ? 'approve'
      : state === 'changes_requested' || state === 'request_changes'
        ? 'requestChanges'
        : undefined;
  if (!decision || (p.action !== undefined && !['submitted', 'reviewed'].includes(p.action))) return undefined;
  return {
    kind: 'review',
    pr: p.pull_request.number,
    decision,
    body: p.review?.body ?? p.review?.content ?? '',
    user: p.sender.login,
  };
}

/** A pull request closed by merging it (GitHub's and Gitea's `closed` action, with `merged: true`). */
function merged(payload: unknown): ForgeEvent | undefined {
  const p = PullRequestPayload.parse(payload);
  const pr = p.pull_request;
  if (p.action !== 'closed' || pr.merged !== true) return undefined;
  const commit = pr.merge_commit_sha && /^[0-9a-f]{40,64}$/.test(pr.merge_commit_sha) ? pr.merge_commit_sha : undefined;
  return {
    kind: 'merged',
    pr: pr.number,
    branch: pr.head.ref,
    ...(commit ? { commit } : {}),
    user: (pr.merged_by ?? p.sender).login,
  };
}
