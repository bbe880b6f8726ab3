import type { RunInput, RunState } from '../workflows/types';
import type { ActivityDeps } from './deps';

/** The manifest of a run (DESIGN §6); signing and the bundle come with the proof issue. */
export function buildManifest(input: RunInput, state: RunState) {
  const approval = [...state.decisions].reverse().find((d) => d.kind === 'approve');
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
    stages: state.stages.map((s) => ({ stage: s.stage, iteration: s.iteration, status: s.status, startedAt: s.startedAt, durationMs: s.durationMs, summary: s.summary })),
    agent: state.agent && { command: state.agent.command, exitCode: state.agent.exitCode, durationMs: state.agent.durationMs, logDigest: `sha256:${state.agent.logId}`, changedFiles: state.agent.changedFiles },
    checks: state.checks.map((c) => ({ name: c.name, command: c.command, exitCode: c.exitCode, passed: c.passed, durationMs: c.durationMs, logDigest: `sha256:${c.logId}` })),
    review: state.review,
    approval: approval ?? null,
    decisions: state.decisions,
  };
}

export function proofActivities(deps: ActivityDeps) {
  return {
    async writeProof(input: { input: RunInput; state: RunState }): Promise<string> {
      const manifest = buildManifest(input.input, input.state);
      const id = await deps.store.put(JSON.stringify(manifest, null, 2) + '\n');
      await deps.runLog.append(input.state.id, `\n=== proof: manifest sha256:${id} ===\n`);
      return id;
    },
  };
}
