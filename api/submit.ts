import { createHash } from 'node:crypto';
import type { WorkflowStartOptions } from '@temporalio/client';
import type { Config } from '../config';
import { RepoRefusedError, resolveRepo } from '../config/repos';
import { formatIssue, parseSpec, SpecError } from '../spec/parse';
import type { specRun } from '../workflows/specRun';
import { REPO_KEY, STATUS_KEY, TITLE_KEY } from '../workflows/searchAttributes';
import type { RunInput } from '../workflows/types';
import { ApiError } from './errors';

/**
 * Turn a submitted spec into the workflow's input, or an ApiError(400) naming the field and line.
 * Also checks what only the server can know: the secrets are allowed, the repo is a git repository inside the
 * server's repos dir (its real path replaces the spec's `repo`).
 */
export function prepareRun(text: string, contentType: string | undefined, submittedBy: string, config: Config): RunInput {
  let spec;
  try {
    spec = parseSpec(text, contentType);
  } catch (err) {
    if (err instanceof SpecError) throw new ApiError('bad_request', `invalid spec: ${formatIssue(err.issues[0])}`, err.issues);
    throw err;
  }
  const refused = spec.secrets.filter((name) => !config.allowedSecrets.includes(name));
  if (refused.length) {
    const issue = { field: 'secrets', message: `${refused.join(', ')} ${refused.length > 1 ? 'are' : 'is'} not allowed on this server (NIGHTSHIFT_ALLOWED_SECRETS)` };
    throw new ApiError('bad_request', `invalid spec: ${formatIssue(issue)}`, [issue]);
  }
  let repo: string;
  try {
    repo = resolveRepo(spec.repo, config.reposDir).path;
  } catch (err) {
    if (!(err instanceof RepoRefusedError)) throw err;
    const issue = { field: err.field, message: err.message };
    throw new ApiError('bad_request', `invalid spec: ${formatIssue(issue)}`, [issue]);
  }
  return {
    spec: { ...spec, repo },
    specDigest: createHash('sha256').update(text).digest('hex'),
    submittedBy,
    settings: {
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      workerQueueTimeoutMs: config.workerQueueTimeoutMs,
      maxReprovisions: 3,
    },
  };
}

/** Start options shared by a submit and a schedule's action: queue, search attributes, what Temporal Web shows. */
export function runStartOptions(input: RunInput, config: Config): Pick<WorkflowStartOptions<typeof specRun>, 'taskQueue' | 'args' | 'typedSearchAttributes' | 'staticSummary' | 'staticDetails'> {
  const { spec } = input;
  return {
    taskQueue: config.taskQueue,
    args: [input],
    typedSearchAttributes: [
      { key: STATUS_KEY, value: 'queued' },
      { key: REPO_KEY, value: spec.repo },
      { key: TITLE_KEY, value: spec.title },
    ],
    staticSummary: spec.title,
    staticDetails: [
      `**repo** ${spec.repo}${spec.base ? ` @ ${spec.base}` : ''}`,
      `**agent** ${spec.agent.kind}${spec.agent.command ? ` \`${spec.agent.command.join(' ')}\`` : ''}`,
      `**checks** ${spec.checks.map((c) => c.name).join(', ') || 'none'}`,
      `**submitted by** ${input.submittedBy}`,
      `Approve with the **approve** signal, input \`{"comment": "…"}\`.`,
    ].join('\n\n'),
  };
}
