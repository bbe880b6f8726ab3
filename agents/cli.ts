import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { AgentTool } from '../contracts/run';

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

const CLI_PACKAGES: Record<string, { pkg: string; entry: string }> = {
  'claude-code': { pkg: '@anthropic-ai/claude-code', entry: 'bin/claude.exe' },
  codex: { pkg: '@openai/codex', entry: 'bin/codex.js' },
};

// The Claude Code binary is 245 MB: hashed once per worker and file version, not per iteration.
const digests = new Map<string, string>();

async function fileDigest(file: string): Promise<string> {
  const { size, mtimeMs } = statSync(file);
  const key = `${file}\0${size}\0${mtimeMs}`;
  let digest = digests.get(key);
  if (!digest) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    digest = hash.digest('hex');
    digests.set(key, digest);
  }
  return digest;
}

/** The installed version of the agent CLI of `kind` (from its package.json: no process started), if it is here. */
export function agentCliVersion(kind: string): string | undefined {
  const cli = CLI_PACKAGES[kind];
  const modules = agentCliModules();
  if (!cli || !modules) return undefined;
  try {
    return (JSON.parse(readFileSync(path.join(modules, cli.pkg, 'package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    return undefined;
  }
}

/** The agent CLI of `kind` on this worker; a `command` agent is the spec's own command (named in the spec). */
export async function agentTool(kind: string): Promise<AgentTool> {
  const cli = CLI_PACKAGES[kind];
  const version = agentCliVersion(kind);
  if (!cli || !version) return { name: cli?.pkg ?? kind };
  return { name: cli.pkg, version, digest: await fileDigest(path.join(agentCliModules()!, cli.pkg, cli.entry)) };
}
