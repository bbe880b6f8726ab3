import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { SecretStore } from '../secrets/secretStore';
import { loadScenario, startModelServer, type ScriptedModelServer } from '../agents/scriptedModel';
import type { Config } from '../config';
import { normalizeBaseUrl } from '../spec/network';
import { parseSpec } from '../spec/parse';
import { FINAL_STATUSES, type RunState } from '../contracts/run';

const EXAMPLES = path.resolve(__dirname, '..', '..', 'examples');

export interface ExampleOptions {
  apiUrl: string;
  token: string;
  config: Config;
  uiUrl?: string;
  say: (line: string) => void;
}

/** The example repo's name in the repos dir: the example spec's `repo`. */
const EXAMPLE_REPO = 'billing';

/** Make the example repo a real git repo in the server's repos dir (once) and return its path. */
export function prepareExampleRepo(reposDir: string): string {
  const repo = path.join(reposDir, EXAMPLE_REPO);
  if (existsSync(path.join(repo, '.git'))) return repo;
  cpSync(path.join(EXAMPLES, 'billing'), repo, { recursive: true });
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=Nightshift example', '-c', 'user.email=example@localhost', ...args], {
      cwd: repo,
      stdio: 'pipe',
    });
  git('init', '--quiet', '--initial-branch=main');
  git('add', '-A');
  git('commit', '--quiet', '-m', 'Invoice totals (with a rounding bug)');
  return repo;
}

/** A key the gateway can inject when the model is the scripted server, which ignores it. */
const OFFLINE_KEY = 'nightshift-offline-example';

/**
 * Without an Anthropic key, the example's Claude Code talks to the scripted model server instead of Claude. Only for
 * `up --example`, whose worker runs in this process and so finds the placeholder key in this environment.
 */
async function offlineModel(config: Config, say: (line: string) => void): Promise<ScriptedModelServer | undefined> {
  if (new SecretStore([], config.secretsFile).workerValue('ANTHROPIC_API_KEY')) return undefined;
  const server = await startModelServer(loadScenario(path.join(EXAMPLES, 'model'), 'fix-rounding'));
  process.env.ANTHROPIC_API_KEY = OFFLINE_KEY;
  // The admin's list of model upstreams, in this process's own config (the API and worker here read it): the spec
  // names the scripted server as agent.baseUrl, which no spec could otherwise.
  config.modelUpstreams.push(normalizeBaseUrl(server.url));
  say(
    `No ANTHROPIC_API_KEY is configured, so the example's Claude Code talks to Nightshift's scripted model server at ${server.url}:`,
  );
  say(
    'a stand-in that plays the turns in examples/model/fix-rounding.json, not a real model. Set ANTHROPIC_API_KEY to run it against Claude.',
  );
  return server;
}

/** Submit the bundled example spec through the API and follow it to awaiting_approval, then to its end. */
export async function runExample(opts: ExampleOptions): Promise<void> {
  const { say } = opts;
  const model = await offlineModel(opts.config, say);
  try {
    await followExample(opts, model?.url);
  } finally {
    await model?.close();
  }
}

async function followExample(opts: ExampleOptions, modelUrl: string | undefined): Promise<void> {
  const { apiUrl, token, say } = opts;
  const repo = prepareExampleRepo(opts.config.reposDir);
  const spec = parseSpec(readFileSync(path.join(EXAMPLES, 'fix-rounding.md'), 'utf8'), 'fix-rounding.md');
  if (modelUrl) spec.agent.baseUrl = modelUrl;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const res = await fetch(`${apiUrl}/v1/runs`, { method: 'POST', headers, body: JSON.stringify(spec) });
  const body = (await res.json()) as { id?: string; error?: { message: string } };
  if (!res.ok || !body.id) throw new Error(`the example spec was refused: ${body.error?.message ?? res.status}`);
  const id = body.id;
  say(`example run ${id}: "${spec.title}" on ${repo}`);

  let last = '';
  let announced = false;
  for (;;) {
    const state = (await (await fetch(`${apiUrl}/v1/runs/${id}`, { headers })).json()) as RunState;
    const line = `${state.status}${state.stage ? ` (${state.stage}, iteration ${state.iteration}/${state.maxIterations})` : ''}`;
    if (state.status && line !== last) {
      say(`  ${id}: ${line}`);
      last = line;
    }
    if (state.status === 'awaiting_approval' && !announced) {
      announced = true;
      say('');
      say(
        `The example run awaits your approval. Look at the diff:  curl -H "Authorization: Bearer ${token}" ${apiUrl}/v1/runs/${id}/diff`,
      );
      say('Approve it in any of three ways:');
      say(
        `  curl -X POST -H "Authorization: Bearer ${token}" ${apiUrl}/v1/runs/${id}/approve -d '{"comment":"looks good"}'`,
      );
      say(`  npx nightshift approve ${id} -m "looks good"`);
      say(
        `  Temporal Web: ${opts.uiUrl ?? '(your Temporal UI)'}/namespaces/${opts.config.namespace}/workflows/${id} → "Send a Signal": approve, input {"comment":"looks good"}`,
      );
      say('');
    }
    if (FINAL_STATUSES.includes(state.status)) {
      if (state.status === 'succeeded')
        say(
          `${id} succeeded: branch ${state.branch} in ${repo} is at ${state.finalCommit?.slice(0, 12)} (git -C ${repo} log ${state.branch})`,
        );
      else say(`${id} ended ${state.status}${state.failure ? `: ${state.failure.reason.split('\n')[0]}` : ''}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
