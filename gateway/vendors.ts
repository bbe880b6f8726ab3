import { ApplicationFailure } from '@temporalio/activity';
import { GATEWAY_PORT } from '../sandbox/bridge';
import { modelSocketPath } from '../sandbox/layout';
import { ModelGateway, PLACEHOLDER_KEY, type GatewayRequest, type ModelPrices, type ModelVendor } from './proxy';
import type { GatewayUsage } from '../contracts/run';
import { normalizeBaseUrl } from '../spec/network';
import type { Spec } from '../spec/schema';
import type { ActivityDeps } from '../runtime/deps';

/** Per vendor: where the real key is on the worker, the default upstream, and what the agent inside is told. */
const VENDORS: Record<ModelVendor, { keyName: string; upstream: string; env: (url: string) => Record<string, string> }> = {
  // Anthropic clients add /v1/messages themselves.
  anthropic: { keyName: 'ANTHROPIC_API_KEY', upstream: 'https://api.anthropic.com', env: (url) => ({ ANTHROPIC_BASE_URL: url, ANTHROPIC_API_KEY: PLACEHOLDER_KEY }) },
  // OpenAI clients call <base>/responses: the /v1 is the upstream's.
  openai: { keyName: 'OPENAI_API_KEY', upstream: 'https://api.openai.com/v1', env: (url) => ({ OPENAI_BASE_URL: url, OPENAI_API_KEY: PLACEHOLDER_KEY }) },
};

/** USD per million tokens (input, output) by model-name prefix; NIGHTSHIFT_MODEL_PRICES adds to or overrides it. */
const PRICES: Record<string, [number, number]> = {
  'claude-opus': [15, 75],
  'claude-sonnet': [3, 15],
  'claude-haiku': [0.8, 4],
  'gpt-5': [1.25, 10],
  'gpt-4o': [2.5, 10],
};

export function vendorOf(agent: Spec['agent']): ModelVendor | undefined {
  return agent.api ?? (agent.kind === 'claude-code' ? 'anthropic' : agent.kind === 'codex' ? 'openai' : undefined);
}

function pricesFor(model: string | undefined, extra: Record<string, [number, number]>): ModelPrices | undefined {
  const table = { ...PRICES, ...extra };
  const prefix = Object.keys(table).filter((p) => model?.startsWith(p)).sort((a, b) => b.length - a.length)[0];
  return prefix ? { inputPerMTok: table[prefix][0], outputPerMTok: table[prefix][1] } : undefined;
}

/**
 * Where the run's gateway sends the real key: the vendor's default API, or `agent.baseUrl` when it is that default or
 * one the server's admin lists (NIGHTSHIFT_MODEL_UPSTREAMS, normalized); anything else is refused with why. Undefined
 * when the agent talks to no model API and names no baseUrl.
 */
export function modelUpstream(agent: Spec['agent'], listed: string[]): { url: string; adminListed: boolean } | { refused: string } | undefined {
  const vendor = vendorOf(agent);
  if (agent.baseUrl === undefined) return vendor ? { url: VENDORS[vendor].upstream, adminListed: false } : undefined;
  const defaults = (vendor ? [VENDORS[vendor]] : Object.values(VENDORS)).map((v) => v.upstream);
  let normalized: string;
  try {
    normalized = normalizeBaseUrl(agent.baseUrl);
  } catch (err) {
    return { refused: `${(err as Error).message}: the model key never goes there` };
  }
  if (listed.includes(normalized)) return { url: agent.baseUrl, adminListed: true };
  if (defaults.some((d) => normalizeBaseUrl(d) === normalized)) return { url: agent.baseUrl, adminListed: false };
  return { refused: `not an allowed model API (${defaults.join(', ')}, or one the server's admin lists in NIGHTSHIFT_MODEL_UPSTREAMS): the gateway would send it the model key` };
}

/** The real key of the agent's model API on this worker (name and value), or undefined when the agent uses none. */
export function modelKey(deps: ActivityDeps, agent: Spec['agent']): { name: string; value: string } | undefined {
  const vendor = vendorOf(agent);
  if (!vendor) return undefined;
  const name = VENDORS[vendor].keyName;
  const value = deps.secrets.workerValue(name);
  if (!value) {
    throw ApplicationFailure.nonRetryable(`no ${name} on worker ${deps.self.worker}: set it in its environment or in its secrets file (it stays in the worker; the agent gets a placeholder)`, 'ModelKeyMissing');
  }
  return { name, value };
}

/** The gateway as the agent inside sees it. */
export const MODEL_BASE_URL = `http://127.0.0.1:${GATEWAY_PORT}`;

export interface RunningGateway {
  /** The variables that point the agent at the gateway, with a placeholder key. */
  env: Record<string, string>;
  gateway: ModelGateway;
  /** Why the gateway refused a request (the run's budget is spent), once it has. */
  refused(): string | undefined;
}

/**
 * The run's model gateway for one agent exec, listening where the sandbox's bridge expects it; undefined when the
 * agent talks to no model API. The real key stays in the worker: the sandbox gets a placeholder.
 */
export async function startModelGateway(
  deps: ActivityDeps,
  input: { agent: Spec['agent']; limits: Spec['limits']; usage?: GatewayUsage; root: string; apiKey: string },
  onRequest: (r: GatewayRequest) => void,
): Promise<RunningGateway | undefined> {
  const vendor = vendorOf(input.agent);
  if (!vendor) return undefined;
  // Checked at submit too; again here for runs started another way (Temporal directly, an old schedule).
  const upstream = modelUpstream(input.agent, deps.modelUpstreams)!;
  if ('refused' in upstream) throw ApplicationFailure.nonRetryable(`agent.baseUrl: ${upstream.refused}`, 'ModelUpstreamRefused');
  const { env } = VENDORS[vendor];
  const prices = pricesFor(input.agent.model, deps.modelPrices);
  if (input.limits.costUsd !== undefined && !prices) {
    throw ApplicationFailure.nonRetryable(`limits.costUsd needs a price for model "${input.agent.model ?? '(none)'}": add it to NIGHTSHIFT_MODEL_PRICES`, 'NoModelPrice');
  }
  let refusal: string | undefined;
  const gateway = new ModelGateway(
    {
      vendor,
      upstream: upstream.url,
      adminListed: upstream.adminListed,
      apiKey: input.apiKey,
      maxTokens: input.limits.tokens,
      maxCostUsd: input.limits.costUsd,
      prices,
      onRequest: (r) => {
        refusal ??= r.refused;
        onRequest(r);
      },
    },
    input.usage,
  );
  await gateway.listen(modelSocketPath(input.root));
  return { env: env(MODEL_BASE_URL), gateway, refused: () => refusal };
}

/** One line of the run's log per model request. */
export function gatewayLine(r: GatewayRequest): string {
  const what = r.refused ? `refused: ${r.refused}` : r.error ? `failed: ${r.error}` : `${r.inputTokens} in / ${r.outputTokens} out tokens`;
  return `\n[nightshift model] ${r.method} ${r.path} → ${r.status}, ${what}\n`;
}
