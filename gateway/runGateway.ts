// A run's gateway for one agent exec, as the agent activities start it: vendor, upstream, key, budget and prices.
import { ApplicationFailure } from '@temporalio/activity';
import { ModelGateway, type GatewayRequest } from './proxy';
import type { ActivityDeps } from '../runtime/deps';
import type { Spec } from '../spec/schema';
import type { GatewayUsage } from '../contracts/run';
import { vendorOf, modelUpstream, VENDORS, MODEL_BASE_URL } from './vendors';
import { pricesFor } from './prices';
import { modelSocketPath } from '../sandbox/layout';
import { limitsFor } from '../budget/limits';
import type { Spender } from '../contracts/spend';
import { sharedBudget } from './sharedBudget';

export interface RunningGateway {
  /** The variables that point the agent at the gateway, with a placeholder key. */
  env: Record<string, string>;
  gateway: ModelGateway;
  /** Why the gateway refused a request (the run's budget is spent), once it has. */
  refused(): string | undefined;
  /** When a limit above the run refused it: the window's end (epoch ms); undefined for the run's own limit. */
  refusedUntil(): number | undefined;
}

/**
 * The run's model gateway for one agent exec, listening where the sandbox's bridge expects it; undefined when the
 * agent talks to no model API. The real key stays in the worker: the sandbox gets a placeholder.
 */
export async function startModelGateway(
  deps: ActivityDeps,
  input: {
    agent: Spec['agent'];
    limits: Pick<Spec['limits'], 'tokens' | 'costUsd'>;
    usage?: GatewayUsage;
    spender?: Spender;
    root: string;
    apiKey: string;
  },
  onRequest: (r: GatewayRequest) => void,
): Promise<RunningGateway | undefined> {
  const vendor = vendorOf(input.agent);
  if (!vendor) return undefined;
  // Checked at submit too; again here for runs started another way (Temporal directly, an old schedule).
  const upstream = modelUpstream(input.agent, deps.modelUpstreams)!;
  if ('refused' in upstream)
    throw ApplicationFailure.nonRetryable(`agent.baseUrl: ${upstream.refused}`, 'ModelUpstreamRefused');
  const { env } = VENDORS[vendor];
  const prices = pricesFor(input.agent.model, deps.modelPrices);
  // Runs from before the spend view (no spender in their input) are booked as unknown.
  const spender = input.spender ?? { token: 'unknown', repo: 'unknown' };
  const shared = sharedBudget(deps.home, spender, limitsFor(deps.home, deps.serverBudget, spender), input.agent.model);
  const priced = shared.limits.find((l) => l.limit.unit === 'usd')?.scope;
  if ((input.limits.costUsd !== undefined || priced) && !prices) {
    throw ApplicationFailure.nonRetryable(
      `${priced ? `${priced}'s budget` : 'limits.costUsd'} needs a price for model "${input.agent.model ?? '(none)'}": add it to NIGHTSHIFT_MODEL_PRICES`,
      'NoModelPrice',
    );
  }
  let refusal: string | undefined;
  let refusedUntil: number | undefined;
  const gateway = new ModelGateway(
    {
      vendor,
      upstream: upstream.url,
      adminListed: upstream.adminListed,
      apiKey: input.apiKey,
      maxTokens: input.limits.tokens,
      maxCostUsd: input.limits.costUsd,
      prices,
      shared,
      onRequest: (r) => {
        if (r.refused && !refusal) [refusal, refusedUntil] = [r.refused, r.refusedUntil];
        onRequest(r);
      },
    },
    input.usage,
  );
  await gateway.listen(modelSocketPath(input.root));
  return { env: env(MODEL_BASE_URL), gateway, refused: () => refusal, refusedUntil: () => refusedUntil };
}

/** One line of the run's log per model request. */
export function gatewayLine(r: GatewayRequest): string {
  const what = r.refused
    ? `refused: ${r.refused}`
    : r.error
      ? `failed: ${r.error}`
      : `${r.inputTokens} in / ${r.outputTokens} out tokens`;
  return `\n[nightshift model] ${r.method} ${r.path} → ${r.status}, ${what}\n`;
}
