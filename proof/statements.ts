import { tallyFromJunit, tallyFromOutput } from '../judge/tally';
import type { DecisionRecord, RunInput, RunState } from '../contracts/run';

// What a proof attests, as in-toto Statements v1 that supply-chain tools read (docs/proof.md):
// - SLSA Provenance v1 for the run (attestation.json): what was asked, with which policy, from which inputs, by which
//   builder, and every other file of the bundle as a byproduct, by digest;
// - an in-toto Test Result per check (attestations/test-NAME.json);
// - the run's decisions (attestations/decisions.json): the review's verdict and each human decision with its channel.
// Their subject is the delivered commit and the diff. The provenance's subject is every file as well, so that
// `cosign verify-blob-attestation` checks any one of them (the manifest, a log) against it, not only the diff.

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE = 'https://slsa.dev/provenance/v1';
export const TEST_RESULT = 'https://in-toto.io/attestation/test-result/v0.1';
export const DECISIONS = 'https://nightshift.dev/decisions/v1';
export const BUILD_TYPE = 'https://nightshift.dev/run/v1';
/** The byproduct naming the proof this server signed before this one (the proof log's chain). */
export const PREVIOUS_PROOF = 'nightshift:previous-proof';

/** in-toto's ResourceDescriptor: at least one of uri, digest or content. */
export interface ResourceDescriptor {
  name?: string;
  uri?: string;
  digest?: Record<string, string>;
  annotations?: Record<string, unknown>;
}

export interface Statement<P = unknown> {
  _type: string;
  subject: { name: string; digest: Record<string, string> }[];
  predicateType: string;
  predicate: P;
}

export interface Provenance {
  buildDefinition: {
    buildType: string;
    externalParameters: Record<string, unknown>;
    internalParameters: Record<string, unknown>;
    resolvedDependencies: ResourceDescriptor[];
  };
  runDetails: {
    builder: { id: string; version?: Record<string, string> };
    metadata: { invocationId: string; startedOn: string; finishedOn: string };
    byproducts: ResourceDescriptor[];
  };
}

/** Where the proof sits in the server's proof log: its place and the digest of the proof before it. */
export interface LogPosition {
  seq: number;
  previous?: string;
}

/** What the builder knows that the run's state does not. */
export interface BuilderInfo {
  /** The server's public URL: the builder's id. */
  serverUrl: string;
  version: string;
  /** When the proof was made. */
  finishedOn: string;
}

/** The change: the delivered commit and its diff. */
export function changeSubject(state: RunState, digests: Record<string, string>): Statement['subject'] {
  return [
    ...(state.finalCommit ? [{ name: 'final-commit', digest: { gitCommit: state.finalCommit } }] : []),
    ...(digests['diff.patch'] ? [{ name: 'diff.patch', digest: { sha256: digests['diff.patch'] } }] : []),
  ];
}

const statement = <P>(subject: Statement['subject'], predicateType: string, predicate: P): Statement<P> => ({
  _type: STATEMENT_TYPE,
  subject,
  predicateType,
  predicate,
});

/** One Test Result per check of the final iteration; its tests by name when its report or its runner named them. */
export function testResultStatements(
  state: RunState,
  subject: Statement['subject'],
  files: Map<string, Buffer>,
  digests: Record<string, string>,
  runUrl: string,
): Map<string, Statement> {
  const out = new Map<string, Statement>();
  for (const c of state.checks) {
    const log = `logs/check-${c.name}.log`;
    const report = `junit/${c.name}.xml`;
    // By name from its JUnit report, else from its log as the judge reads it (`go test -json`, `pytest -v`, cargo's).
    const text = (name: string) => files.get(name)?.toString('utf8');
    const tally = files.has(report)
      ? tallyFromJunit(text(report)!)
      : files.has(log)
        ? tallyFromOutput(text(log)!)
        : undefined;
    const cases = tally?.cases ?? [];
    const named = (status: string) => cases.filter((t) => t.status === status).map((t) => t.name);
    const configuration: ResourceDescriptor[] = [
      {
        name: log,
        digest: { sha256: digests[log] },
        annotations: { command: c.command, exitCode: c.exitCode, durationMs: c.durationMs },
      },
      ...(c.junit
        ? [
            {
              name: report,
              digest: { sha256: digests[report] },
              annotations: {
                tests: c.junit.tests,
                failures: c.junit.failures,
                errors: c.junit.errors,
                skipped: c.junit.skipped,
              },
            },
          ]
        : []),
      ...(c.holdout
        ? [
            {
              name: `holdout:${c.holdout.set}`,
              ...(c.holdout.digest ? { digest: { sha256: c.holdout.digest } } : {}),
              annotations: { files: c.holdout.files },
            },
          ]
        : []),
    ];
    const predicate = {
      // WARNED: passed by its exit code alone, its tests uncounted (docs/checks.md, "Unverified checks").
      result: c.passed ? (c.unverified ? 'WARNED' : 'PASSED') : 'FAILED',
      ...(c.unverified ? { unverified: c.unverified } : {}),
      configuration,
      url: runUrl,
      passedTests: named('passed'),
      // Skipped tests: known to the runner, not run (the integrity findings in the manifest say whether that is new).
      warnedTests: named('skipped'),
      failedTests: named('failed'),
    };
    out.set(`attestations/test-${c.name}.json`, statement(subject, TEST_RESULT, predicate));
  }
  return out;
}

/** The review's verdict and every human decision, with how it came (docs/security.md, "Decisions"). */
export function decisionsStatement(
  state: RunState,
  decisions: DecisionRecord[],
  subject: Statement['subject'],
): Statement {
  const review = state.review && {
    verdict: state.review.verdict,
    findings: state.review.findings.map((f) => ({ rule: f.rule, message: f.message })),
  };
  return statement(subject, DECISIONS, { runId: state.id, review: review ?? null, decisions });
}

/**
 * SLSA Provenance v1 of the run. `byproducts` are the bundle's other files, by digest (the attestations among them),
 * and the proof before this one in the server's log.
 */
export function provenanceStatement(
  input: RunInput,
  state: RunState,
  digests: Record<string, string>,
  builder: BuilderInfo,
  log: LogPosition,
): Statement<Provenance> {
  const { spec } = input;
  const { 'diff.patch': _diff, ...byproducts } = digests;
  const subject = [
    ...changeSubject(state, digests),
    ...Object.entries(byproducts).map(([name, sha256]) => ({ name, digest: { sha256 } })),
  ];
  const agent = state.agent;
  const resolvedDependencies = resolvedDependenciesOf(input, state);
  return statement(subject, SLSA_PROVENANCE, {
    buildDefinition: {
      buildType: BUILD_TYPE,
      externalParameters: {
        spec: { digest: { sha256: input.specDigest } },
        title: spec.title,
        repo: spec.repo,
        base: state.base,
        branch: state.branch,
        submittedBy: input.submittedBy,
        agent: { kind: spec.agent.kind, model: spec.agent.model },
        ...(input.plan ? { plan: { id: input.plan.id, task: input.plan.task } } : {}),
      },
      internalParameters: {
        sandbox: {
          driver: spec.sandbox.driver,
          network: spec.sandbox.network,
          cpus: spec.sandbox.cpus,
          memoryBytes: spec.sandbox.memory,
          diskBytes: spec.sandbox.disk,
          timeoutMs: spec.sandbox.timeout,
        },
        scope: spec.scope,
        harness: spec.harness,
        limits: spec.limits,
        checks: spec.checks.map((c) => ({ name: c.name, command: c.run })),
        ...(spec.setup ? { setup: { commands: spec.setup.run, network: spec.setup.network } } : {}),
      },
      resolvedDependencies,
    },
    runDetails: {
      builder: {
        id: `${builder.serverUrl.replace(/\/+$/, '')}/#/builder`,
        version: { nightshift: builder.version, ...(agent?.worker ? { worker: agent.worker } : {}) },
      },
      metadata: { invocationId: state.id, startedOn: state.createdAt, finishedOn: builder.finishedOn },
      byproducts: [
        ...Object.entries(byproducts).map(([name, sha256]) => ({ name, digest: { sha256 } })),
        ...(log.previous
          ? [{ name: PREVIOUS_PROOF, digest: { sha256: log.previous }, annotations: { seq: log.seq - 1 } }]
          : []),
      ],
    },
  });
}

/** What the run was made from: the base, the agent and its image, the models, the environment, a plan's tasks. */
function resolvedDependenciesOf({ spec, plan }: RunInput, state: RunState): ResourceDescriptor[] {
  const agent = state.agent;
  return [
    ...(state.baseCommit
      ? [{ name: 'base', uri: `${spec.repo}@${state.base ?? 'HEAD'}`, digest: { gitCommit: state.baseCommit } }]
      : []),
    ...(agent?.tool
      ? [
          {
            name: 'agent',
            uri: agent.tool.version ? `pkg:npm/${agent.tool.name}@${agent.tool.version}` : agent.tool.name,
            ...(agent.tool.digest ? { digest: { sha256: agent.tool.digest } } : {}),
          },
        ]
      : []),
    ...(agent?.image
      ? [
          {
            name: 'sandbox-image',
            uri: agent.image.name,
            digest: { sha256: agent.image.digest.replace(/^sha256:/, '') },
          },
        ]
      : []),
    ...(state.modelUsage?.models ?? []).map((m) => ({
      name: 'model',
      uri: `model:${spec.agent.api ?? 'unknown'}/${m}`,
    })),
    // The environment the agent and the checks ran with: its cache key (what it was made from) and where it came from.
    ...(state.environment
      ? [
          {
            name: 'environment',
            uri: `nightshift:environment/${state.environment.key}`,
            annotations: { source: state.environment.source, paths: state.environment.paths },
          },
        ]
      : []),
    // A plan's integration: each task's proof, by digest, and the graph (what each task needed).
    ...(plan?.tasks ?? []).map((t) => ({
      name: `task:${t.id}`,
      uri: `nightshift:run/${t.runId}`,
      digest: { sha256: t.proofId },
      annotations: { needs: t.needs },
    })),
  ];
}
