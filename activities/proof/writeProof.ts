import { nightshiftVersion } from '../../config/version';
import { buildBundle } from '../../proof/bundle';
import { withProvenance } from '../../proof/decisions';
import { ensureSigningKey, listKeys } from '../../proof/keys';
import { appendProof } from '../../proof/log';
import { changeSubject, decisionsStatement, provenanceStatement, testResultStatements } from '../../proof/statements';
import type { CheckIntegrity, RunInput, RunState } from '../../contracts/run';
import type { ActivityDeps } from '../../runtime/deps';
import { runPageUrl } from '../../config/runPage';

/**
 * The manifest of a run (docs/reference.md, "Proof"): what ran, on which commits, with which results, approved by whom,
 * and how each decision came (`publicKeyPems`: the keys the API signs or signed decisions with).
 */
export function buildManifest(input: RunInput, state: RunState, publicKeyPems: string[]) {
  const { decisions } = withProvenance(state, publicKeyPems);
  const approval = [...decisions].reverse().find((d) => d.kind === 'approve');
  return {
    version: 1,
    runId: state.id,
    title: state.title,
    specDigest: `sha256:${input.specDigest}`,
    repo: state.repo,
    branch: state.branch,
    base: state.base,
    baseCommit: state.baseCommit,
    finalCommit: state.finalCommit,
    diffDigest: state.diffId && `sha256:${state.diffId}`,
    iterations: state.iteration,
    submittedBy: state.submittedBy,
    stages: state.stages.map((s) => ({
      stage: s.stage,
      iteration: s.iteration,
      status: s.status,
      startedAt: s.startedAt,
      durationMs: s.durationMs,
      summary: s.summary,
    })),
    agent: state.agent && {
      command: state.agent.command,
      exitCode: state.agent.exitCode,
      durationMs: state.agent.durationMs,
      logDigest: `sha256:${state.agent.logId}`,
      changedFiles: state.agent.changedFiles,
      ...(state.agent.summary ? { summary: state.agent.summary } : {}),
      ...(state.agent.transcriptId ? { transcriptDigest: `sha256:${state.agent.transcriptId}` } : {}),
    },
    modelUsage: state.modelUsage ?? null,
    checks: state.checks.map((c) => ({
      name: c.name,
      command: c.command,
      exitCode: c.exitCode,
      passed: c.passed,
      durationMs: c.durationMs,
      logDigest: `sha256:${c.logId}`,
      // The set's name and digest, never its files: its log in the bundle is a summary too.
      ...(c.holdout ? { holdout: c.holdout } : {}),
      ...(c.junit
        ? {
            junit: {
              tests: c.junit.tests,
              failures: c.junit.failures,
              errors: c.junit.errors,
              skipped: c.junit.skipped,
              reportDigest: `sha256:${c.junit.reportId}`,
            },
          }
        : {}),
      // Held against the base: its tests then and now, and the canary run that shows the harness reports failures.
      ...(c.integrity ? { integrity: integrityManifest(c.integrity) } : {}),
      // Passed by its exit code alone: no test counts could be read (docs/checks.md, "Unverified checks").
      ...(c.unverified ? { unverified: c.unverified } : {}),
    })),
    review: state.review,
    approval: approval ?? null,
    decisions,
  };
}

function integrityManifest(i: CheckIntegrity) {
  const canary =
    i.canary && 'logId' in i.canary
      ? { result: i.canary.result, files: i.canary.files, logDigest: `sha256:${i.canary.logId}` }
      : i.canary;
  const baseTests = i.baseTests && {
    laid: i.baseTests.laid,
    allowTestChanges: i.baseTests.allowed,
    ...(i.baseTests.result ? { result: i.baseTests.result } : {}),
    ...(i.baseTests.logId ? { logDigest: `sha256:${i.baseTests.logId}` } : {}),
  };
  return {
    ...(i.tests ? { tests: i.tests } : {}),
    ...(canary ? { canary } : {}),
    ...(baseTests ? { baseTests } : {}),
    findings: i.findings,
  };
}

/** The review as people read it. */
function reviewMarkdown(state: RunState): string {
  const review = state.review;
  if (!review) return '# Review\n\nNo review ran.\n';
  const lines = [`# Review: ${review.verdict}`, '', `${review.diffLines} changed lines.`, ''];
  for (const f of review.findings) lines.push(`- **${f.rule}**: ${f.message}`);
  for (const n of review.notes ?? []) lines.push(`- note: ${n}`);
  return lines.join('\n') + '\n';
}

export function proofActivities(deps: ActivityDeps) {
  return {
    /**
     * The signed proof bundle (proof.tar.gz) in the artifact store, appended to the server's proof log; made after
     * approval, so the approval is signed.
     */
    async writeProof(input: { input: RunInput; state: RunState }): Promise<string> {
      const { state } = input;
      const key = ensureSigningKey(deps.home);
      const publicKeyPems = listKeys(deps.home).map((k) => k.publicKeyPem);
      const evidence = await gatherEvidence(deps, input.input, state, publicKeyPems);
      const { decisions } = withProvenance(state, publicKeyPems);
      const entry = await appendProof(deps.home, state.id, async (position) => {
        const bundle = await buildBundle(
          evidence,
          {
            attestations: (digests) => {
              const subject = changeSubject(state, digests);
              const statements = testResultStatements(
                state,
                subject,
                evidence,
                digests,
                runPageUrl(deps.publicUrl, state.id),
              );
              return statements.set('attestations/decisions.json', decisionsStatement(state, decisions, subject));
            },
            provenance: (digests) => {
              const builder = {
                serverUrl: deps.publicUrl,
                version: nightshiftVersion(),
                finishedOn: new Date().toISOString(),
              };
              return provenanceStatement(input.input, state, digests, builder, position);
            },
          },
          key,
        );
        return deps.store.put(bundle);
      });
      await deps.runLog.append(
        state.id,
        `\n=== proof: proof.tar.gz sha256:${entry.proof}, signed by ${key.keyId}, #${entry.seq} in the proof log ===\n`,
      );
      return entry.proof;
    },
  };
}

/** The run's evidence as the bundle's files: manifest, diff, logs, reports, transcript, review. */
async function gatherEvidence(
  deps: ActivityDeps,
  input: RunInput,
  state: RunState,
  publicKeyPems: string[],
): Promise<Map<string, Buffer>> {
  const get = (id: string) => deps.store.get(id);
  const files = new Map<string, Buffer>();
  files.set('manifest.json', Buffer.from(JSON.stringify(buildManifest(input, state, publicKeyPems), null, 2) + '\n'));
  if (state.diffId) files.set('diff.patch', await get(state.diffId));
  if (state.agent) files.set('logs/agent.log', await get(state.agent.logId));
  for (const c of state.checks) {
    files.set(`logs/check-${c.name}.log`, await get(c.logId));
    if (c.junit) files.set(`junit/${c.name}.xml`, await get(c.junit.reportId));
    if (c.integrity?.canary && 'logId' in c.integrity.canary && c.integrity.canary.logId)
      files.set(`logs/check-${c.name}-canary.log`, await get(c.integrity.canary.logId));
    if (c.integrity?.baseTests?.logId)
      files.set(`logs/check-${c.name}-base-tests.log`, await get(c.integrity.baseTests.logId));
  }
  if (state.agent?.transcriptId) files.set('transcript.jsonl', await get(state.agent.transcriptId));
  files.set('review.md', Buffer.from(reviewMarkdown(state)));
  if (state.review?.reportId) files.set('review.json', await get(state.review.reportId));
  return files;
}
