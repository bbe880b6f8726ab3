// Specs the tests and the benchmarks submit.
/** A small repo whose "work" is making src/value.txt hold the right number. */
export const VALUE_REPO = {
  'src/value.txt': '1\n',
  'README.md': 'A tiny repo for Nightshift tests.\n',
};

/** A spec (JSON form) on `repo` with a command agent; override any field. */
export function spec(repo: string, agentScript: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    title: 'Set the value to two',
    task: 'Make src/value.txt contain 2.',
    repo,
    agent: { kind: 'command', command: ['sh', '-c', `mkdir -p notes; ${agentScript}`] },
    scope: { allow: ['src/**', 'notes/**'] },
    checks: [
      {
        name: 'value',
        run: 'test "$(cat src/value.txt)" = 2 || { echo "expected 2, got $(cat src/value.txt)"; exit 1; }',
      },
    ],
    limits: { iterations: 2 },
    ...extra,
  };
}
