import type { Sandbox } from '../../sandbox/sandbox';
import type { Spec } from '../../spec/schema';
import type { ActivityDeps } from '../../runtime/deps';
import type { RunRepo } from '../../git/git';
import { openSandbox, runRepo } from '../../workspaces/sandboxes';

/** The run's sandbox, its workspace laid out at `commit` on the run's branch (so a retried attempt starts over). */
export async function workspaceAt(
  deps: ActivityDeps,
  input: { runId: string; sandbox: Spec['sandbox'] },
  commit: string,
): Promise<{ sandbox: Sandbox; repo: RunRepo; branch: string }> {
  const sandbox = await openSandbox(deps, input.runId, input.sandbox);
  const repo = runRepo(deps, sandbox);
  const branch = await repo.branch();
  await repo.layOut(branch, commit);
  return { sandbox, repo, branch };
}
