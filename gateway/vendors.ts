// The model vendors Nightshift's agents speak to: which vendor an agent uses, where its API is (the vendor's or one the
// admin allows), and the worker's key for it.
import { ApplicationFailure } from '@temporalio/activity';
import { GATEWAY_PORT } from '../sandbox/bridge';
import { PLACEHOLDER_KEY, type ModelVendor } from './proxy';
import { normalizeBaseUrl } from '../spec/network';
import type { Spec } from '../spec/schema';
import type { ActivityDeps } from '../runtime/deps';

/** Per vendor: where the real key is on the worker, the default upstream, and what the agent inside is told. */
export const VENDORS: Record<
  ModelVendor,
  { keyName: string; upstream: string; env: (url: string) => Record<string, string> }
> = {
  // Anthropic clients add /v1/messages themselves.
  anthropic: {
    keyName: 'ANTHROPIC_API_KEY',
    upstream: 'https://api.anthropic.com',
    env: (url) => ({ ANTHROPIC_BASE_URL: url, ANTHROPIC_API_KEY: PLACEHOLDER_KEY }),
  },
  // OpenAI clients call <base>/responses: the /v1 is the upstream's.
  openai: {
    keyName: 'OPENAI_API_KEY',
    upstream: 'https://api.openai.com/v1',
    env: (url) => ({ OPENAI_BASE_URL: url, OPENAI_API_KEY: PLACEHOLDER_KEY }),
  },
};

export function vendorOf(agent: Spec['agent']): ModelVendor | undefined {
  return agent.api ?? (agent.kind === 'claude-code' ? 'anthropic' : agent.kind === 'codex' ? 'openai' : undefined);
}

/**
 * Where the run's gateway sends the real key: the vendor's default API, or `agent.baseUrl` when it is that default or
 * one the server's admin lists (NIGHTSHIFT_MODEL_UPSTREAMS, normalized); anything else is refused with why. Undefined
 * when the agent talks to no model API and names no baseUrl.
 */
export function modelUpstream(
  agent: Spec['agent'],
  listed: string[],
): { url: string; adminListed: boolean } | { refused: string } | undefined {
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
  return {
    refused: `not an allowed model API (${defaults.join(', ')}, or one the server's admin lists in NIGHTSHIFT_MODEL_UPSTREAMS): the gateway would send it the model key`,
  };
}

/** The real key of the agent's model API on this worker (name and value), or undefined when the agent uses none. */
export function modelKey(deps: ActivityDeps, agent: Spec['agent']): { name: string; value: string } | undefined {
  const vendor = vendorOf(agent);
  if (!vendor) return undefined;
  const name = VENDORS[vendor].keyName;
  const value = deps.secrets.workerValue(name);
  if (!value) {
    throw ApplicationFailure.nonRetryable(
      `no ${name} on worker ${deps.self.worker}: set it in its environment or in its secrets file (it stays in the worker; the agent gets a placeholder)`,
      'ModelKeyMissing',
    );
  }
  return { name, value };
}

/** The gateway as the agent inside sees it. */
export const MODEL_BASE_URL = `http://127.0.0.1:${GATEWAY_PORT}`;
