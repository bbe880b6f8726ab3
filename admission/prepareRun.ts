// Spec admission: what the server accepts as a run, wherever the spec comes from (the API, a schedule, a forge issue).
import { createHash } from 'node:crypto';
import { modelUpstream } from '../gateway/vendors';
import type { Config } from '../config';
import { HoldoutRefusedError, resolveHoldoutSet } from '../config/holdout';
import { RepoRefusedError } from '../config/repoResolution';
import { RegisteredForges } from '../config/forges';
import { RemoteRepos, resolveSpecRepo, storedRepo, type SpecRepo } from '../config/remotes';
import { Openings, unopenedInternal } from '../spec/network';
import { formatIssue, parseSpec, SpecError, type SpecIssue } from '../spec/parse';
import type { RunInput } from '../contracts/run';
import { imageRef } from '../config/images';
import type { Spec } from '../spec/schema';
import { planProblems, taskSpec } from '../spec/plan';

/** A spec the server does not take: a one-line reason, and each problem with its field (and line, where known). */
export class SpecRejected extends Error {
  constructor(
    message: string,
    readonly issues: SpecIssue[],
  ) {
    super(message);
  }
}

/**
 * What is wrong with the image a spec's sandbox asks for: only the docker driver starts from one, and only from an
 * image the admin allows (the default, NIGHTSHIFT_DOCKER_IMAGES). The worker checks again at provision.
 */
function imageIssue(sandbox: Spec['sandbox'], allowed: string[]): SpecIssue | undefined {
  if (sandbox.image === undefined) return undefined;
  if (sandbox.driver !== 'docker')
    return {
      field: 'sandbox.image',
      message: `only the docker driver starts from an image; this sandbox's driver is ${sandbox.driver} (set sandbox.driver: docker)`,
    };
  if (!allowed.includes(imageRef(sandbox.image)))
    return {
      field: 'sandbox.image',
      message: `"${sandbox.image}" is not an image this server allows (NIGHTSHIFT_DOCKER_IMAGES); allowed: ${allowed.join(', ')}`,
    };
  return undefined;
}

/**
 * Turn a submitted spec into the workflow's input, or a SpecRejected naming the field and line (the API answers 400, a
 * forge event is ignored with it). Also checks what only the server can know: the secrets are allowed, the repo is a
 * registered remote (by name) or a git repository inside the server's repos dir (its real path replaces the spec's
 * `repo`), each hold-out set a check names is on the server.
 */
export function prepareRun(
  text: string,
  contentType: string | undefined,
  submittedBy: string,
  config: Config,
): RunInput {
  let spec;
  try {
    spec = parseSpec(text, contentType);
  } catch (err) {
    if (err instanceof SpecError) throw new SpecRejected(`invalid spec: ${formatIssue(err.issues[0])}`, err.issues);
    throw err;
  }
  const invalid = (issue: SpecIssue) => new SpecRejected(`invalid spec: ${formatIssue(issue)}`, [issue]);
  const problem = serverProblem(spec, config) ?? planProblem(spec, config);
  if (problem) throw invalid(problem);
  let resolved: SpecRepo;
  try {
    resolved = resolveSpecRepo(spec.repo, config);
  } catch (err) {
    if (!(err instanceof RepoRefusedError)) throw err;
    throw invalid({ field: err.field, message: err.message });
  }
  // A repo's credential is the worker's own: no run's sandbox gets it, even should the admin also allow its name.
  const credentials = new Map([
    ...new RegisteredForges(config.home).list().map((f) => [f.credential, 'forge'] as const),
    ...new RemoteRepos(config.home).list().flatMap((r) => (r.credential ? [[r.credential, 'repo'] as const] : [])),
  ]);
  const credential = spec.secrets.find((name) => credentials.has(name));
  if (credential)
    throw invalid({
      field: 'secrets',
      message: `${credential} is a registered ${credentials.get(credential)}'s credential; it never enters a sandbox`,
    });
  // mergeTaskBase merges in a scratch copy of a local repository; a registered remote's mirror is not one yet.
  if (spec.tasks && resolved.kind === 'remote')
    throw invalid({
      field: 'tasks',
      message: `plans run on local repositories only so far; ${spec.repo} is a registered remote (docs/plans.md)`,
    });
  // On a forge repo a pull request is the default (`deliver.pr: false` opts out), reviewed there before approval
  // (workflows/specRun/forgeReview.ts). The workflow gets settings or nothing, never `false`.
  const forge = resolved.kind === 'remote' && resolved.remote.forge !== 'none' ? resolved.remote.forge : undefined;
  const { pr: asked, ...deliver } = spec.deliver;
  const pr = asked === false ? undefined : (asked ?? (forge ? { draft: false } : undefined));
  const onForge = forge && pr ? { forge: { kind: forge as 'gitea' | 'github' } } : {};
  return {
    spec: { ...spec, deliver: pr ? { ...deliver, pr } : deliver, repo: storedRepo(resolved) },
    specDigest: createHash('sha256').update(text).digest('hex'),
    submittedBy,
    settings: {
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      workerQueueTimeoutMs: config.workerQueueTimeoutMs,
      maxReprovisions: 3,
      planMaxTasks: config.planMaxTasks,
    },
    ...onForge,
  };
}

/**
 * What only the server can refuse in a spec (a plan's, or one of its tasks'): secrets it does not allow, a model
 * upstream or an internal host only its admin may open, an image or toolchain it does not offer, a hold-out set it
 * does not have.
 */
function serverProblem(spec: Spec, config: Config): SpecIssue | undefined {
  const refused = spec.secrets.filter((name) => !config.allowedSecrets.includes(name));
  if (refused.length) {
    return {
      field: 'secrets',
      message: `${refused.join(', ')} ${refused.length > 1 ? 'are' : 'is'} not allowed on this server (NIGHTSHIFT_ALLOWED_SECRETS)`,
    };
  }
  // Only the admin says where the model key and the sandbox's connections may go.
  const upstream = modelUpstream(spec.agent, config.modelUpstreams);
  if (upstream && 'refused' in upstream) return { field: 'agent.baseUrl', message: upstream.refused };
  const openings = new Openings(config.egressInternal);
  for (const [field, network] of [
    ['sandbox.network', spec.sandbox.network],
    ['setup.network', spec.setup?.network ?? []],
  ] as const) {
    const [internal] = unopenedInternal(network, openings);
    if (internal) {
      return {
        field: `${field}.${internal.index}`,
        message: `"${internal.entry}" is ${internal.why}; only the server's admin can open an internal host:port (NIGHTSHIFT_EGRESS_INTERNAL)`,
      };
    }
  }
  const image = imageIssue(spec.sandbox, config.dockerImages);
  if (image) return image;
  // The worker checks again when it opens the run's sandbox (workspaces/sandboxes.ts).
  const offered = Object.keys(config.toolchains);
  for (const [i, name] of spec.sandbox.toolchains.entries()) {
    if (!offered.includes(name))
      return {
        field: `sandbox.toolchains.${i}`,
        message: `the toolchain "${name}" is not offered on this server (toolchains offered: ${offered.join(', ') || 'none'}; NIGHTSHIFT_TOOLCHAINS)`,
      };
  }
  // The worker checks again when the check runs: the set may be gone by then, or the worker's directory differ.
  for (const [i, check] of spec.checks.entries()) {
    if (check.holdout === undefined) continue;
    try {
      resolveHoldoutSet(check.holdout, config.holdoutDir);
    } catch (err) {
      if (!(err instanceof HoldoutRefusedError)) throw err;
      return { field: `checks.${i}.holdout`, message: err.message };
    }
  }
  return undefined;
}

/** A plan's graph, then each task's own spec: the first problem, named by the task's field (`tasks.2.checks.0…`). */
function planProblem(spec: Spec, config: Config): SpecIssue | undefined {
  // `tasks: auto`: the proposal is held to the same rules when the agent writes it (agents/planning.ts).
  if (!Array.isArray(spec.tasks)) return undefined;
  const [graph] = planProblems(spec.tasks, config.planMaxTasks);
  if (graph) return graph;
  for (const [i, task] of spec.tasks.entries()) {
    const problem = serverProblem(taskSpec(spec, task), config);
    if (problem)
      return { ...problem, field: `tasks.${i}.${problem.field}`, message: `task "${task.id}": ${problem.message}` };
  }
  return undefined;
}
