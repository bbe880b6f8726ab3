import { createPublicKey } from 'node:crypto';
import { budgetRaise } from '../../activities/forge/budgetRaise';
import type { RemoteRepo } from '../../config/remotes';
import type { Decision } from '../../contracts/run';
import { readBudgetComment } from '../../forges/budgetComment';
import { readForgeEvent } from '../../forges/webhook';
import { provenanceOf } from '../../proof/decisions';
import { ensureSigningKey } from '../../proof/keys';
import { tempDir } from '../helpers/repos';

// `/nightshift budget +5 …` on a run's pull request (issue 26): its amounts read as `nightshift budget` reads them,
// a bare number in dollars; an approver's raise signed with its amounts; anyone else's, or a bad amount, raises
// nothing.

test('the amounts: +5 is dollars, +5usd, +$5, +100ktokens, both, added up; the text after them is the comment', () => {
  expect(readBudgetComment('+5')).toEqual({ raise: { costUsd: 5 }, comment: '' });
  expect(readBudgetComment('+5usd')).toEqual({ raise: { costUsd: 5 }, comment: '' });
  expect(readBudgetComment('+$2.50 go on')).toEqual({ raise: { costUsd: 2.5 }, comment: 'go on' });
  expect(readBudgetComment('  +100ktokens\n\nthe tests are long ')).toEqual({
    raise: { tokens: 100_000 },
    comment: 'the tests are long',
  });
  expect(readBudgetComment('+5usd +2mtokens +1 one more +1')).toEqual({
    raise: { costUsd: 6, tokens: 2_000_000 },
    comment: 'one more +1',
  });
  expect(readBudgetComment('$3 5 more')).toEqual({ raise: { costUsd: 8 }, comment: 'more' });
});

test.each([
  ['', 'no amount to add'],
  ['please', 'no amount to add'],
  ['+lots', '"+lots" is not an amount'],
  ['+5euros', '"+5euros" is not an amount'],
  ['+0', '"+0" is not an amount'],
  ['+1.5tokens', '"+1.5tokens" is not an amount'],
  ['+5usd +abc why', '"+abc" is not an amount'],
  ['+200000usd', 'costUsd is at most 100000'],
  ['+2000mtokens', 'tokens is at most 1000000000'],
])('a bad amount %j: %s', (text, error) => {
  expect(readBudgetComment(text)).toEqual({ error });
});

test('the comment is read on a pull request only: on an issue it is ignored, saying where it goes', () => {
  const read = (body: string, is_pull: boolean) =>
    readForgeEvent((h) => ({ 'x-gitea-event-type': 'pull_request_comment' })[h], {
      action: 'created',
      issue: { number: 9, title: 't', body: '' },
      comment: { body },
      sender: { login: 'bob' },
      is_pull,
    });
  expect(read('/nightshift budget +5 go on', true)).toEqual({ kind: 'budget', pr: 9, text: '+5 go on', user: 'bob' });
  // Read by the worker, which answers a bad amount on the pull request.
  expect(read('/nightshift budget +lots', true)).toEqual({ kind: 'budget', pr: 9, text: '+lots', user: 'bob' });
  expect(read('/nightshift budget +5', false)).toEqual({
    ignored: "a run's budget is raised on its pull request, not on its issue",
  });
});

describe("the worker's reading", () => {
  const home = tempDir('forge-budget-home');
  const remote = { name: 'calc', forge: 'gitea', approvers: ['bob'] } as RemoteRepo;
  const run = { id: 'ns-run', iteration: 2 };
  const event = (user: string, text: string) => ({ kind: 'budget' as const, pr: 9, text, user });
  const keys = () => [createPublicKey(ensureSigningKey(home).publicKeyPem)];

  test("an approver's raise is signed as the API signs one, with its channel and amounts: the proof lists it verified", () => {
    const action = budgetRaise(home, remote, event('bob', '+1 +50ktokens go on'), run);
    if (!('raise' in action)) throw new Error(JSON.stringify(action));
    const { decision } = action.raise;
    expect(action.raise.runId).toBe('ns-run');
    expect(decision).toMatchObject({ by: 'gitea:bob', comment: 'go on', via: 'forge', costUsd: 1, tokens: 50_000 });
    // As the workflow records the signal.
    const recorded: Decision = {
      kind: 'raiseBudget',
      comment: 'go on',
      by: 'gitea:bob',
      at: '2026-12-01T00:00:00.000Z',
      iteration: 2,
      sig: decision.sig,
      via: 'forge',
      raise: { tokens: 50_000, costUsd: 1 },
    };
    expect(provenanceOf(keys(), 'ns-run', recorded)).toMatchObject({ channel: 'forge', verified: true });
    // The amounts are signed: the same signature on a larger raise, or another iteration, is only a claim.
    for (const forged of [
      { ...recorded, raise: { tokens: 50_000, costUsd: 500 } },
      { ...recorded, iteration: 3 },
    ])
      expect(provenanceOf(keys(), 'ns-run', forged)).toMatchObject({ channel: 'temporal', verified: false });
  });

  test("a non-approver's raise is ignored, saying why; a bad amount is answered on the pull request with the syntax", () => {
    expect(budgetRaise(home, remote, event('walt', '+1'), run)).toEqual({
      ignored: 'walt may not raise the budget (not among the approvers of this repo)',
    });
    const bad = budgetRaise(home, remote, event('bob', '+lots'), run);
    expect(bad).toMatchObject({ ignored: 'no budget raise: "+lots" is not an amount', tell: { issue: 9 } });
    expect('tell' in bad && bad.tell?.body).toMatch(/^Nightshift raised nothing for run `ns-run`: "\+lots" is not an/);
    expect('tell' in bad && bad.tell?.body).toContain('`/nightshift budget +5` (dollars');
  });
});
