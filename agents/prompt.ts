import type { Spec } from '../spec/schema';

export interface PromptInput {
  title: string;
  task: string;
  scope: Spec['scope'];
  checks: Spec['checks'];
  harness?: Spec['harness'];
  iteration: number;
  feedback?: string;
  /** The repo's own instructions for agents (AGENTS.md, CLAUDE.md), by file name. */
  instructions?: Record<string, string>;
}

/** The agent's prompt: the task, the rules the pipeline enforces, and on later iterations what went wrong. */
export function buildPrompt(p: PromptInput): string {
  const parts = [`# ${p.title}`, '', p.task.trim() || '(no further description)', ''];
  for (const [file, text] of Object.entries(p.instructions ?? {})) {
    parts.push(`## The repository's instructions (${file})`, '', text.trim(), '');
  }
  parts.push('## Rules the pipeline enforces after you finish');
  parts.push(`- You may change only files matching ${p.scope.allow.map((g) => `\`${g}\``).join(', ')}${p.scope.deny.length ? `, and never ${p.scope.deny.map((g) => `\`${g}\``).join(', ')}` : ''}.`);
  if (p.checks.length) {
    parts.push('- These checks run, in order, and must all pass:');
    for (const c of p.checks) parts.push(`  - ${c.name}: \`${c.run}\`${c.holdout ? ' (a hold-out check: it adds tests you cannot see, so make the change right in general, not only for the tests you see)' : ''}`);
  }
  if (!p.harness?.allowChanges) {
    const extra = p.harness?.protect.length ? `, and ${p.harness.protect.map((g) => `\`${g}\``).join(', ')}` : '';
    parts.push(`- Do not change the test harness (package.json scripts and test-runner keys, test-runner configs, conftest.py, Makefiles, CI workflows${extra}): the checks run the base's version of it. Add new tests beside the existing ones instead.`);
  }
  parts.push('- Your changes are committed and verified by the pipeline; you do not need to commit or push.');
  if (p.feedback) {
    parts.push('', `## Iteration ${p.iteration}: feedback on the previous attempt`, '', p.feedback.trim());
  }
  return parts.join('\n') + '\n';
}
