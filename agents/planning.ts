import { planProblems } from '../spec/plan';
import { ProposedTasksSchema, type ProposedTask } from '../spec/schema';

/** Where the planning agent writes its task list, relative to the workspace (read back through the sandbox). */
export const TASK_LIST_FILE = '.nightshift/tasks.json';
/** The most of it the worker reads: a list longer than this is refused, not cut. */
export const TASK_LIST_MAX_BYTES = 256 * 1024;

/**
 * The planning agent's prompt (`tasks: auto`): the goal, the file to write, its exact shape and the graph's rules.
 * The agent is told its other writes are discarded: it plans, it does not do the work.
 */
export function buildPlanningPrompt(p: {
  title: string;
  goal: string;
  maxTasks: number;
  instructions?: Record<string, string>;
  feedback?: string;
}): string {
  const parts = [
    `# Plan: ${p.title}`,
    '',
    'Cut the work below into tasks for other agents, each done in a sandbox of its own on this repository and checked',
    'before the tasks that need it start. Read the workspace as you need; do not do the work itself: every file you',
    `write is discarded except \`${TASK_LIST_FILE}\`.`,
    '',
    '## The work',
    '',
    p.goal.trim() || '(no further description)',
    '',
  ];
  for (const [file, text] of Object.entries(p.instructions ?? {}))
    parts.push(`## The repository's instructions (${file})`, '', text.trim(), '');
  parts.push(
    '## Your answer',
    '',
    `Write \`${TASK_LIST_FILE}\` (JSON, nothing else in it):`,
    '{"tasks": [{"id": "schema", "task": "what this task must do, on its own", "needs": []},',
    '           {"id": "api", "task": "…", "needs": ["schema"]}]}',
    `- At most ${p.maxTasks} tasks; each id a slug (lowercase letters, digits, "-"; at most 40), used once.`,
    '- `needs`: the ids of the tasks whose result this task builds on; no cycles. Tasks that need nothing of each',
    '  other run at the same time.',
    '- A person approves or corrects the list before any task runs.',
  );
  if (p.feedback) parts.push('', '## Your previous list was refused', '', p.feedback.trim());
  return parts.join('\n') + '\n';
}

/** The task list the agent wrote, or why it cannot run: the schema's and the graph's problems, each by its field. */
export function parseTaskList(
  text: string | undefined,
  maxTasks: number,
): { tasks: ProposedTask[] } | { problems: string[] } {
  if (text === undefined) return { problems: [`no ${TASK_LIST_FILE} was written`] };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the text, which the agent then hears back.
    return { problems: [`${TASK_LIST_FILE} is not valid JSON`] };
  }
  const parsed = ProposedTasksSchema.safeParse(json);
  if (!parsed.success)
    return {
      problems: parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.') || '(the file)'}: ${i.message}`),
    };
  const problems = planProblems(parsed.data.tasks, maxTasks).map((p) => `${p.field}: ${p.message}`);
  return problems.length ? { problems } : { tasks: parsed.data.tasks };
}
