import { CliError } from '../../cli/client';
import { budgetAmounts } from '../../cli/format';

test("`nightshift budget`'s amounts: dollars and tokens, added up; anything else a usage error naming it", () => {
  expect(budgetAmounts(['+5usd'])).toEqual({ costUsd: 5 });
  expect(budgetAmounts(['+$2.50', '+100ktokens'])).toEqual({ costUsd: 2.5, tokens: 100_000 });
  expect(budgetAmounts(['1usd', '+1USD', '+2mtokens', '+5tokens'])).toEqual({ costUsd: 2, tokens: 2_000_005 });
  for (const bad of ['+5', '5 euros', '-5usd', '+usd', 'tokens']) {
    expect(() => budgetAmounts([bad])).toThrow(CliError);
    expect(() => budgetAmounts([bad])).toThrow(`budget: "${bad}" is not an amount`);
  }
});
