import { createHash } from 'node:crypto';
import type { WorkflowStartOptions } from '@temporalio/client';
import { modelUpstream } from '../gateway/vendors';
import type { Config } from '../config';
import { HoldoutRefusedError, resolveHoldoutSet } from '../config/holdout';
import { RepoRefusedError } from '../config/repoResolution';
import { RemoteRepos, resolveSpecRepo, storedRepo, type SpecRepo } from '../config/remotes';
import { Openings, unopenedInternal } from '../spec/network';
import { formatIssue, parseSpec, SpecError, type SpecIssue } from '../spec/parse';
import type { specRun } from '../workflows/specRun';
import { runSearchAttributes } from '../workflows/searchAttributes';
import type { RunInput } from '../contracts/run';
import { ApiError } from './errors';

/**
 * Turn a submitted spec into the workflow's input, or an ApiError(400) naming the field and line.
 * Also checks what only the server can know: the secrets are allowed, the repo is a registered remote (by name) or a
 * git repository inside the server's repos dir (its real path replaces the spec's `repo`), each hold-out set a check names is on the server.
 */
export function prepareRun(text: string, contentType: string | undefined, submittedBy: string, config: Config): RunInput {
  let spec;
  try {
    spec = parseSpec(text, contentType);
  } catch (err) {
    if (err instanceof SpecError) throw new ApiError('bad_request', `invalid spec: ${formatIssue(err.issues[0])}`, err.issues);
    throw err;
  }
  const invalid = (issue: SpecIssue) => new ApiError('bad_request', `invalid spec: ${formatIssue(issue)}`, [issue]);
  const refused = spec.secrets.filter((name) => !config.allowedSecrets.includes(name));
  if (refused.length) {
    throw invalid({ field: 'secrets', message: `${refused.join(', ')} ${refused.length > 1 ? 'are' : 'is'} not allowed on this server (NIGHTSHIFT_ALLOWED_SECRETS)` });
  }
  // Only the admin says where the model key and the sandbox's connections may go.
  const upstream = modelUpstream(spec.agent, config.modelUpstreams);
  if (upstream && 'refused' in upstream) throw invalid({ field: 'agent.baseUrl', message: upstream.refused });
  const openings = new Openings(config.egressInternal);
  for (const [field, network] of [['sandbox.network', spec.sandbox.network], ['setup.network', spec.setup?.network ?? []]] as const) {
    const [internal] = unopenedInternal(network, openings);
    if (internal) {
      throw invalid({ field: `${field}.${internal.index}`, message: `"${internal.entry}" is ${internal.why}; only the server's admin can open an internal host:port (NIGHTSHIFT_EGRESS_INTERNAL)` });
    }
  }
  let resolved: SpecRepo;
  try {
    resolved = resolveSpecRepo(spec.repo, config);
  } catch (err) {
    if (!(err instanceof RepoRefusedError)) throw err;
    throw invalid({ field: err.field, message: err.message });
  }
  // A repo's credential is the worker's own: no run's sandbox gets it, even should the admin also allow its name.
  const credentials = new Set(new RemoteRepos(config.home).list().flatMap((r) => (r.credential ? [r.credential] : [])));
  const credential = spec.secrets.find((name) => credentials.has(name));
  if (credential) throw invalid({ field: 'secrets', message: `${credential} is a registered repo's credential; it never enters a sandbox` });
  // On a forge, a pull request is reviewed there before approval (workflows/specRun/forgeReview.ts).
  const onForge = resolved.kind === 'remote' && resolved.remote.forge !== 'none' && spec.deliver.pr ? { forge: { kind: resolved.remote.forge as 'gitea' | 'github' } } : {};
  // The worker checks again when the check runs: the set may be gone by then, or the worker's directory differ.
  spec.checks.forEach((check, i) => {
    if (check.holdout === undefined) return;
    try {
      resolveHoldoutSet(check.holdout, config.holdoutDir);
    } catch (err) {
      if (!(err instanceof HoldoutRefusedError)) throw err;
      throw invalid({ field: `checks.${i}.holdout`, message: err.message });
    }
  });
  return {
    spec: { ...spec, repo: storedRepo(resolved) },
    specDigest: createHash('sha256').update(text).digest('hex'),
    submittedBy,
    settings: {
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      workerQueueTimeoutMs: config.workerQueueTimeoutMs,
      maxReprovisions: 3,
    },
    ...onForge,
  };
}

/** Start options shared by a submit and a schedule's action: queue, search attributes, what Temporal Web shows. */
export function runStartOptions(input: RunInput, config: Config): Pick<WorkflowStartOptions<typeof specRun>, 'taskQueue' | 'args' | 'typedSearchAttributes' | 'staticSummary' | 'staticDetails'> {
  const { spec } = input;
  return {
    taskQueue: config.taskQueue,
    args: [input],
    typedSearchAttributes: runSearchAttributes(spec),
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
