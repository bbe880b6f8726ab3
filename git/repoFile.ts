import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from '../runtime/deps';
import { git, GitError } from './git';
import { withRepoSource } from './mirror';

/** Larger than this is no config file (`.nightshift.yml`): refused rather than carried through a workflow's history. */
const MAX_BYTES = 256 * 1024;

/** Why `file` cannot name a file in a repo's tree, or undefined. */
function pathProblem(file: string): string | undefined {
  if (!file || /[\x00-\x1f\x7f]/.test(file)) return 'is empty or holds a control character';
  if (file.startsWith('/') || file.split('/').some((part) => part === '..' || part === '.' || part === ''))
    return 'is not a plain relative path';
  return undefined;
}

/**
 * The text of `path` on the repo's default branch: a registered remote's (its HEAD, in this worker's mirror,
 * fetched first) or a local repo's HEAD. Undefined when there is no such file. Never the agent's branch.
 */
export async function readRepoFile(
  deps: ActivityDeps,
  input: { repo: string; path: string },
): Promise<string | undefined> {
  const problem = pathProblem(input.path);
  if (problem)
    throw ApplicationFailure.nonRetryable(`path ${JSON.stringify(input.path.slice(0, 200))} ${problem}`, 'BadPath');
  return withRepoSource(deps, input.repo, undefined, async (source) => {
    // In the repo's own directory, git finds its git directory (a work tree's .git, or a bare repo).
    const inRepo = (args: string[]) => git(source.path, args);
    const object = `HEAD:${input.path}`;
    const type = await inRepo(['cat-file', '-t', object]).then(
      (t) => t.trim(),
      (err) => {
        if (err instanceof GitError) return undefined;
        throw err;
      },
    );
    if (type !== 'blob') return undefined;
    const size = Number((await inRepo(['cat-file', '-s', object])).trim());
    if (size > MAX_BYTES)
      throw ApplicationFailure.nonRetryable(
        `${input.path} in ${input.repo} is ${size} bytes; at most ${MAX_BYTES} are read`,
        'FileTooLarge',
      );
    return inRepo(['cat-file', 'blob', object]);
  });
}
