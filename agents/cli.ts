import { existsSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The agent CLIs are project dependencies (npm), never downloaded at run time. Every sandbox sees their packages
 * read-only at the same place: bwrap binds the worker's node_modules scopes there; the docker image has them copied
 * in at build time.
 */
export const AGENT_CLI_ROOT = '/opt/nightshift/node_modules';
/** The npm scopes holding the CLIs and their platform binaries. */
export const AGENT_CLI_SCOPES = ['@anthropic-ai', '@openai'];

export const CLAUDE_BIN = `${AGENT_CLI_ROOT}/@anthropic-ai/claude-code/bin/claude.exe`;
export const CODEX_JS = `${AGENT_CLI_ROOT}/@openai/codex/bin/codex.js`;

/** The worker's node_modules directory that holds the CLIs' scopes, or undefined when they are not installed. */
export function agentCliModules(): string | undefined {
  try {
    const dir = path.resolve(path.dirname(require.resolve('@anthropic-ai/claude-code/package.json')), '..', '..');
    return existsSync(path.join(dir, '@openai', 'codex')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** Host directories bound read-only into a sandbox, and where. */
export function agentCliMounts(): { host: string; target: string }[] {
  const modules = agentCliModules();
  if (!modules) return [];
  return AGENT_CLI_SCOPES.map((scope) => ({ host: path.join(modules, scope), target: `${AGENT_CLI_ROOT}/${scope}` }));
}
