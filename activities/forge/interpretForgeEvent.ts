import { randomBytes } from 'node:crypto';
import { quoteForgeIssue } from '../../agents/prompt';
import type { Forge } from '../../forges/forge';
import { ensureSigningKey } from '../../proof/keys';
import { signDecision } from '../../proof/decisions';
import { quickSpec, readServerDefaults, REPO_DEFAULTS_FILE } from '../../spec/quick';
import type { RunInput } from '../../contracts/run';
import type { ActivityDeps } from '../../runtime/deps';
import { readRepoFile } from '../../git/repoFile';
import { runPageUrl } from '../../config/runPage';
import { forgeCall } from '../../forges/connect';
import type { ForgeEventInput, ForgeAction } from '../../contracts/forge';
import { forgeOpener } from './forgeOpener';
import { budgetRaise } from './budgetRaise';

/**
 * Who may do what is the forge's to say (write access starts runs; the repo's approvers approve and raise budgets),
 * asked with the worker's credential.
 */
export function interpretForgeEvent(deps: ActivityDeps) {
  const open = forgeOpener(deps);
  return async (input: ForgeEventInput): Promise<ForgeAction> => {
    const { remote, forge } = open(input.repo);
    const { event } = input;
    const by = `${remote.forge}:${'user' in event ? event.user : ''}`;
    if (event.kind === 'issue') {
      if (!(await forgeCall(() => mayWrite(forge, event.user))))
        return { ignored: `${event.user} has no write access to ${remote.name}` };
      // The default branch, as the mirror has it (never a run's branch), as the API's quick runs read it.
      const yaml = await readRepoFile(deps, { repo: remote.name, path: REPO_DEFAULTS_FILE });
      let run: RunInput;
      try {
        const task = quoteForgeIssue(
          {
            forge: remote.forge,
            issue: event.issue,
            title: event.title,
            body: event.body,
            author: event.author,
            authorIsApprover: event.author !== undefined && remote.approvers.includes(event.author),
            startedBy: event.user,
          },
          issueNonce(event.body),
        );
        const { spec } = quickSpec(
          { repo: remote.name, title: event.title, task },
          yaml,
          await readServerDefaults(deps.specDefaultsFile),
        );
        // A run from the forge is reviewed there.
        const deliver = (spec.deliver ?? {}) as Record<string, unknown>;
        const withPr = { ...spec, deliver: { ...deliver, pr: deliver.pr ?? true } };
        run = deps.prepareRun(JSON.stringify(withPr), by);
      } catch (err) {
        const reason = (err as Error).message.split('\n')[0];
        return {
          ignored: reason,
          tell: { issue: event.issue, body: `Nightshift could not start a run for this issue: ${reason}` },
        };
      }
      run.forge = { kind: remote.forge as 'gitea' | 'github', issue: event.issue };
      return {
        start: { runId: input.newRunId, run, issue: event.issue, link: runPageUrl(deps.publicUrl, input.newRunId) },
      };
    }
    if (event.kind === 'budget' && input.run) return budgetRaise(deps.home, remote, event, input.run);
    if (event.kind !== 'review' || !input.run) return { ignored: 'no run to decide' };
    const allowed =
      event.decision === 'approve'
        ? remote.approvers.includes(event.user)
        : await forgeCall(() => mayWrite(forge, event.user));
    if (!allowed)
      return {
        ignored: `${event.user} may not ${event.decision === 'approve' ? 'approve (not among the approvers of this repo)' : 'request changes (no write access)'}`,
      };
    const decided = {
      kind: event.decision,
      by,
      comment: event.body,
      iteration: input.run.iteration,
      via: 'forge' as const,
    };
    const sig = signDecision(ensureSigningKey(deps.home), input.run.id, decided);
    return {
      decide: {
        runId: input.run.id,
        kind: event.decision,
        decision: { comment: decided.comment, by, sig, via: 'forge' },
      },
    };
  };
}

/**
 * A marker for the issue's quote that its text does not hold: chosen after the text was written, so unguessable to its
 * author.
 */
function issueNonce(text: string): string {
  for (;;) {
    const nonce = randomBytes(12).toString('hex');
    if (!text.includes(nonce)) return nonce;
  }
}

async function mayWrite(forge: Forge, user: string): Promise<boolean> {
  const level = await forge.permission(user);
  return level === 'write' || level === 'admin';
}
