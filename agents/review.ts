import { z } from 'zod';
import type { ReviewFinding } from '../contracts/run';

const MAX_DIFF_CHARS = 200_000;

/** The review agent's prompt: the task, the diff, and the exact answer expected. It is told it may not change files. */
export function buildReviewPrompt(p: { title: string; task: string; diff: string }): string {
  const diff = p.diff.length > MAX_DIFF_CHARS ? `${p.diff.slice(0, MAX_DIFF_CHARS)}\n[diff truncated]` : p.diff;
  return [
    `# Review: ${p.title}`,
    '',
    'You are reviewing a change another agent made for this task. Read the workspace as you need, but do not modify',
    'any file: what you write is discarded. Judge whether the change does the task correctly and safely.',
    '',
    '## The task',
    '',
    p.task.trim() || '(no further description)',
    '',
    '## The change (git diff)',
    '',
    '```diff',
    diff.trimEnd(),
    '```',
    '',
    '## Your answer',
    '',
    'End with exactly one JSON object and nothing after it:',
    '{"verdict": "approve" | "changes", "findings": [{"file": "path", "line": 12, "message": "what must change"}]}',
    'Use "approve" with no findings when the change is right.',
    '',
  ].join('\n');
}

const VerdictSchema = z.object({
  verdict: z.enum(['approve', 'changes']),
  findings: z
    .array(
      z.object({
        file: z.string().optional(),
        line: z.number().int().positive().optional(),
        message: z.string().min(1),
      }),
    )
    .default([]),
});

/**
 * The verdict in the review agent's final message (the last JSON object in it); a missing or malformed one fails
 * closed.
 */
export function parseReviewVerdict(message: string | undefined): {
  verdict: 'approve' | 'changes';
  findings: ReviewFinding[];
} {
  const candidates = [...(message ?? '').matchAll(/\{[\s\S]*\}/g)].map((m) => m[0]);
  for (const text of candidates.reverse()) {
    for (let start = text.indexOf('{'); start >= 0; start = text.indexOf('{', start + 1)) {
      try {
        const v = VerdictSchema.parse(JSON.parse(text.slice(start)));
        const findings: ReviewFinding[] = v.findings.map((f) => ({
          rule: 'agent-review',
          ...f,
          message: `${f.file ? `${f.file}${f.line ? `:${f.line}` : ''}: ` : ''}${f.message}`,
        }));
        if (v.verdict === 'changes' && findings.length === 0)
          findings.push({ rule: 'agent-review', message: 'the reviewer asked for changes without naming them' });
        return { verdict: findings.length ? 'changes' : 'approve', findings };
      } catch {
        // not this one
      }
    }
  }
  return {
    verdict: 'changes',
    findings: [
      {
        rule: 'agent-review',
        message: 'the review agent gave no verdict (a JSON object with "verdict" and "findings")',
      },
    ],
  };
}
