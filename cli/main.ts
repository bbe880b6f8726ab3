import { Command, CommanderError } from 'commander';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { nightshiftVersion } from '../config/version';
import type { Role } from '../api/tokens';
import type { PublicKeyEntry } from '../proof/keys';
import { FINAL_STATUSES, RUN_STATUSES, type RunState, type RunStateView } from '../contracts/run';
import { ApiClient, CliError } from './client';
import {
  budgetAmounts,
  failureText,
  formatFleet,
  formatRun,
  runsTable,
  schedulesTable,
  table,
  type RunSummary,
  type ScheduleSummary,
} from './format';
import { registerForgeCommands, registerRepoCommands } from './repoCommands';
import { registerCampaignCommands } from './campaignCommands';
import { addBudgetCommand, registerSpendCommand } from './spendCommands';
import { filterOutput, jsonText } from './terminal';
import { serverKeys, trustedKeys, verifyBundleAt, verifyProofLog } from './verify';
import { campaignProofAt, verifyCampaignProof } from './verifyCampaign';
import { verifyCommit } from './verifyCommit';

const api = new ApiClient();
const print = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};
const printJson = (value: unknown, indent = 2) => print(jsonText(value, indent));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const isFinal = (status: string | null | undefined) => (FINAL_STATUSES as readonly string[]).includes(status ?? '');

/**
 * While following a run, ride out an API restart (up to a minute) instead of giving up at the first refused connection.
 */
async function patiently<T>(call: () => Promise<T>, patienceMs = 60_000): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof CliError && err.unreachable) || Date.now() > deadline) throw err;
      await sleep(1000);
    }
  }
}

const CONTENT_TYPES: Record<string, string> = {
  '.md': 'text/markdown',
  '.markdown': 'text/markdown',
  '.yml': 'application/yaml',
  '.yaml': 'application/yaml',
  '.json': 'application/json',
};

function readSpec(file: string): { text: string; contentType: string } {
  if (!existsSync(file)) throw new CliError(`no such file: ${file}`, 2);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
  }
  return { text, contentType: CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'text/markdown' };
}

const runPath = (id: string) => `/v1/runs/${encodeURIComponent(id)}`;

const program = new Command('nightshift')
  .description('Hand coding work to AI agents and walk away: durable, sandboxed, checked runs on Temporal')
  .version(nightshiftVersion(), '-V, --version')
  .option(
    '--raw',
    'print what the server sends as it is, terminal control sequences included (by default they are stripped)',
  )
  // Usage errors print as one line like every other failure (and exit 2, see main()).
  .configureOutput({
    outputError: (str, write) =>
      write(`nightshift: ${str.replace(/^error: /, '').trimEnd()} (see "nightshift --help")\n`),
  })
  .exitOverride();

// The server side (Temporal SDK, worker, express) loads only for the commands that run it: the rest start fast.
type ServerCommand = (opts: Record<string, unknown>) => Promise<void>;
const server = (name: 'up' | 'worker' | 'serve' | 'doctor') => async (opts: Record<string, unknown>) => {
  const run: ServerCommand = (await import('./up'))[name];
  await run(opts);
};
program
  .command('up')
  .description('start the Temporal dev server (unless TEMPORAL_ADDRESS), a worker and the API')
  .option('--example', 'also run the bundled example spec to awaiting_approval')
  .action(server('up'));
program.command('worker').description('start a worker alone (for more machines)').action(server('worker'));
program.command('serve').description('start the API alone').action(server('serve'));
program
  .command('doctor')
  .description('what is installed and what is missing, with the fix')
  .option('--json', 'print JSON')
  .action(server('doctor'));
program
  .command('cluster')
  .description('run Temporal on PostgreSQL on this machine (no Docker), for TEMPORAL_ADDRESS')
  .option('--dir <dir>', 'data dir (default: $NIGHTSHIFT_HOME/cluster)')
  .option('--port <port>', 'the frontend port (default: 7233, then the one it had)')
  .action(async (opts: { dir?: string; port?: string }) => (await import('./cluster')).cluster(opts));

program
  .command('submit <file>')
  .description('submit a spec (Markdown with front matter, YAML or JSON)')
  .option('--wait', 'follow the run until it awaits approval or ends')
  .option('--json', 'print JSON')
  .option('--idempotency-key <key>', 'a retried submit with the same key returns the same run')
  .action(async (file: string, opts: SubmitOptions) => {
    const { text, contentType } = readSpec(file);
    await submitted('/v1/runs', text, contentType, opts);
  });

program
  .command('run <repo> <task>')
  .description(
    "start a run from a task in plain words: the rest of the spec from the repo's .nightshift.yml, else the server's defaults",
  )
  .option('--title <title>', "the run's title (default: the task's first line, at most 80 characters)")
  .option('--wait', 'follow the run until it awaits approval or ends')
  .option('--json', 'print JSON')
  .option('--idempotency-key <key>', 'a retried run with the same key returns the same run')
  .action(async (repo: string, task: string, opts: SubmitOptions & { title?: string }) => {
    if (!task.trim()) throw new CliError('the task is empty: say what the agent should do', 2);
    const body = JSON.stringify({ repo, task, ...(opts.title !== undefined ? { title: opts.title } : {}) });
    await submitted('/v1/runs/quick', body, 'application/json', opts);
  });

interface SubmitOptions {
  wait?: boolean;
  json?: boolean;
  idempotencyKey?: string;
}

/**
 * POST a spec (or a quick run) and print the run; with --wait, follow it (exit 1 unless it awaits approval or
 * succeeded).
 */
async function submitted(route: string, body: string, contentType: string, opts: SubmitOptions): Promise<void> {
  const res = await api.request('POST', route, {
    body,
    contentType,
    headers: opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {},
  });
  const run = res.json<{ id: string; status: string; url: string }>();
  if (!opts.wait) return opts.json ? printJson(run) : print(`${run.id}  ${run.status}  ${run.url}`);
  if (!opts.json) print(`${run.id} submitted`);
  const final = await follow(run.id, !opts.json);
  if (opts.json) printJson(final);
  if (!['awaiting_approval', 'succeeded'].includes(final.status)) process.exitCode = 1;
}

/** Poll a run, printing each change of status or stage, until it awaits approval or ends. */
async function follow(id: string, verbose: boolean): Promise<RunState> {
  let last = '';
  for (;;) {
    const run = await patiently(() => api.json<RunState>('GET', runPath(id)));
    const line = `${run.status}${run.stage ? ` · ${run.stage} · iteration ${run.iteration}/${run.maxIterations}` : ''}`;
    if (verbose && line !== last) print(`  ${line}`);
    last = line;
    if (run.status === 'awaiting_approval' || isFinal(run.status)) {
      if (verbose && run.failure) print(`  ${failureText(run.failure, '    ')}`);
      return run;
    }
    await sleep(1000);
  }
}

program
  .command('runs')
  .description('list runs, newest first')
  .option('--status <status>', 'only runs in this state')
  .option('--limit <n>', 'at most n runs', '20')
  .option('--json', 'print JSON')
  .action(async (opts: { status?: string; limit: string; json?: boolean }) => {
    if (opts.status && !(RUN_STATUSES as readonly string[]).includes(opts.status))
      throw new CliError(`--status must be one of ${RUN_STATUSES.join(', ')}`, 2);
    if (!/^[1-9]\d*$/.test(opts.limit)) throw new CliError('--limit must be a positive whole number', 2);
    const query = new URLSearchParams({ limit: opts.limit, ...(opts.status ? { status: opts.status } : {}) });
    const res = await api.json<{ runs: RunSummary[] }>('GET', `/v1/runs?${query}`);
    if (opts.json) return printJson(res);
    const runs = res?.runs ?? [];
    print(runs.length === 0 ? 'no runs' : runsTable(runs));
  });

program
  .command('status <id>')
  .description('a run: status, stages with timings, checks, review, decisions')
  .option('--json', 'print JSON')
  .action(async (id: string, opts: { json?: boolean }) => {
    const run = await api.json<RunStateView>('GET', runPath(id));
    if (opts.json) printJson(run);
    else print(formatRun(run));
  });

program
  .command('logs <id>')
  .description("a run's log")
  .option('-f, --follow', 'keep printing until the run ends')
  .action(async (id: string, opts: { follow?: boolean }) => {
    let from = 0;
    for (;;) {
      const res = await patiently(() => api.request('GET', `${runPath(id)}/logs?from=${from}`));
      if (res.text) process.stdout.write(res.text);
      const next = Number(res.headers.get('x-next-offset'));
      // Without the header, count what we were given (bytes, as the offset is).
      from = Number.isSafeInteger(next) && next >= from ? next : from + Buffer.byteLength(res.text);
      if (!opts.follow) return;
      const status =
        res.headers.get('x-run-status') ?? (await patiently(() => api.json<RunState>('GET', runPath(id)))).status;
      // A final status is only reported once everything the run logged is in the log: one more read catches the tail.
      if (isFinal(status)) {
        const tail = await api.request('GET', `${runPath(id)}/logs?from=${from}`);
        if (tail.text) process.stdout.write(tail.text);
        return;
      }
      await sleep(1000);
    }
  });

program
  .command('diff <id>')
  .description("a run's current diff")
  .action(async (id: string) => {
    process.stdout.write((await api.request('GET', `${runPath(id)}/diff`)).text);
  });

program
  .command('proof <id>')
  .description("download a succeeded run's signed proof bundle")
  .option(
    '-o, --output <path>',
    'the file to write (a path ending in .tar.gz or .tgz), or a directory to write <id>-proof.tar.gz in',
    '.',
  )
  .action(async (id: string, opts: { output: string }) => {
    const bundle = (await api.request('GET', `${runPath(id)}/proof`)).bytes;
    const isDir = existsSync(opts.output) && statSync(opts.output).isDirectory();
    const file =
      !isDir && /\.(tar\.gz|tgz)$/i.test(opts.output) ? opts.output : path.join(opts.output, `${id}-proof.tar.gz`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, bundle);
    print(file);
  });

program
  .command('verify [bundle] [sha]')
  .usage('<bundle> [--key <file>] | --campaign <id> | --log | --commit <repo> <sha>')
  .description(
    "check a proof bundle (the .tar.gz, or the directory it was unpacked to) offline: every digest and signature (exit 0, or 1 naming the first mismatch); a campaign's proof (the JSON `nightshift campaign proof` writes), and each run proof it names, from the server; with --campaign, a campaign's proof from the server; with --log, the server's whole proof log; with --commit, a commit in a local repo against the run that made it",
  )
  .option(
    '--key <file>',
    "the server's public key (PEM), or its keys as GET /v1/keys serves them (JSON); default: $NIGHTSHIFT_HOME/keys",
  )
  .option('--log', "walk the server's proof log: every proof there, each naming the one before it (online)")
  .option(
    '--campaign <id>',
    "check a campaign's proof from the server, then each run proof it names: its digest, signature, run and final commit (online)",
  )
  .option(
    '--commit',
    "check commit <sha> in <repo>: one SSH signature (git verify-commit with the server's allowed_signers), and that the proof of the run its Nightshift-Run trailer names, from the server, has it in the run's range (after its base commit, up to its final one)",
  )
  .action(
    async (
      bundle: string | undefined,
      sha: string | undefined,
      opts: { key?: string; log?: boolean; commit?: boolean; campaign?: string },
    ) => {
      if (opts.commit) {
        if (!bundle || !sha)
          throw new CliError('verify --commit needs a repo and a commit: nightshift verify --commit REPO SHA', 2);
        if (opts.key)
          throw new CliError("--key is for a bundle: verify --commit reads the server's keys from the server", 2);
        return print(await verifyCommit(api, bundle, sha));
      }
      if (sha) throw new CliError('verify takes one bundle (or --commit REPO SHA)', 2);
      if (!bundle && !opts.log && !opts.campaign)
        throw new CliError('verify needs a bundle, --campaign ID, --log, or --commit REPO SHA', 2);
      if (bundle && opts.campaign) throw new CliError('verify takes a file or --campaign ID, not both', 2);
      // A campaign's proof is checked with its run proofs, which only the server has; a bundle is checked offline.
      const campaignProof = opts.campaign
        ? (await api.request('GET', `/v1/campaigns/${encodeURIComponent(opts.campaign)}/proof`)).bytes
        : bundle && campaignProofAt(bundle);
      if (campaignProof) {
        // From the server, its keys are the server's unless --key says; a file's are this machine's, as a bundle's.
        const keys = opts.campaign && !opts.key ? await serverKeys(api) : trustedKeys(opts.key);
        for (const line of await verifyCampaignProof(api, campaignProof, keys)) print(line);
      } else if (bundle) for (const line of await verifyBundleAt(bundle, trustedKeys(opts.key))) print(line);
      if (opts.log)
        print(
          await verifyProofLog(api, opts.key ? trustedKeys(opts.key) : undefined, (line) =>
            process.stderr.write(`${line}\n`),
          ),
        );
    },
  );

program
  .command('keys')
  .description("the server's signing keys, each with its validity window")
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const { keys } = await api.json<{ keys: PublicKeyEntry[] }>('GET', '/v1/keys');
    if (opts.json) return printJson({ keys });
    print(
      table([
        ['KEY', 'VALID FROM', 'VALID UNTIL'],
        ...keys.map((k) => [k.keyid, k.validFrom, k.validUntil ?? 'in use']),
      ]),
    );
  })
  .command('rotate')
  .description('sign with a new key from now on; proofs and commits signed before still verify (admin)')
  .action(async () => {
    const { retired, current } = await api.json<{ retired: PublicKeyEntry; current: PublicKeyEntry }>(
      'POST',
      '/v1/keys/rotate',
    );
    print(
      `signing with ${current.keyid} from ${current.validFrom}; ${retired.keyid} retired (it still verifies what it signed)`,
    );
  });

const decisions: [name: string, route: string, description: string, needsComment: boolean, done: string][] = [
  ['approve', 'approve', 'approve a run awaiting approval', false, 'approved'],
  ['reject', 'reject', 'reject a run awaiting approval', false, 'rejected'],
  ['changes', 'request-changes', 'send a run back to the agent with your comment', true, 'changes requested'],
];
for (const [name, route, description, needsComment, done] of decisions) {
  const command = program.command(`${name} <id>`);
  // On a plan, a request for changes may name the task to run again.
  if (route === 'request-changes') command.option('--task <id>', "a plan's task to run again, with what needs it");
  command
    .description(description)
    .option(needsComment ? '-m, --message <comment>' : '-m, --message [comment]', 'comment')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { message?: string; json?: boolean; task?: string }) => {
      if (needsComment && !opts.message?.trim()) throw new CliError(`${name} needs -m "what should change"`, 2);
      const res = await api.json('POST', `${runPath(id)}/${route}`, {
        comment: typeof opts.message === 'string' ? opts.message : '',
        ...(opts.task ? { task: opts.task } : {}),
      });
      if (opts.json) printJson(res, 0);
      else print(`${id}: ${done}${opts.task ? ` (task ${opts.task} runs again)` : ''}`);
    });
}

program
  .command('budget <id> <amounts...>')
  .description('raise the spent model budget of a run awaiting_budget: +5usd, +100000tokens (or both); it goes on')
  .option('-m, --message <comment>', 'why')
  .option('--json', 'print JSON')
  .action(async (id: string, amounts: string[], opts: { message?: string; json?: boolean }) => {
    const res = await api.json('POST', `${runPath(id)}/budget`, {
      ...budgetAmounts(amounts),
      ...(opts.message ? { comment: opts.message } : {}),
    });
    if (opts.json) printJson(res, 0);
    else print(`${id}: budget raised; the run goes on`);
  });

program
  .command('tasks <id> <file>')
  .description("correct a `tasks: auto` plan's proposed tasks before approving them (JSON or YAML: {tasks: [...]})")
  .option('-m, --message <comment>', 'why')
  .option('--json', 'print JSON')
  .action(async (id: string, file: string, opts: { message?: string; json?: boolean }) => {
    let body: unknown;
    try {
      body = YAML.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new CliError(`${file}: ${(err as Error).message.split('\n')[0]}`, 2);
    }
    const tasks = Array.isArray(body) ? body : (body as { tasks?: unknown } | null)?.tasks;
    const res = await api.json('PUT', `${runPath(id)}/tasks`, {
      tasks,
      ...(opts.message ? { comment: opts.message } : {}),
    });
    if (opts.json) printJson(res, 0);
    else print(`${id}: tasks corrected; nightshift approve ${id} runs them`);
  });

program
  .command('cancel <id>')
  .description('cancel a run (its sandbox is torn down)')
  .option('-m, --message [comment]', 'why')
  .option('--json', 'print JSON')
  .action(async (id: string, opts: { message?: string | boolean; json?: boolean }) => {
    const res = await api.json('POST', `${runPath(id)}/cancel`, {
      comment: typeof opts.message === 'string' ? opts.message : '',
    });
    if (opts.json) printJson(res, 0);
    else print(`${id}: cancel requested`);
  });

program
  .command('fleet')
  .description('workers, runs per state, queue depth')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const fleet = await api.json<Record<string, unknown>>('GET', '/v1/fleet');
    if (opts.json) printJson(fleet);
    else print(formatFleet(fleet));
  });

// Tokens are managed on the server's machine (they live hashed in $NIGHTSHIFT_HOME); the API picks changes up at once.
const token = program.command('token').description('API tokens (on the server machine): add, ls, rm');
// Loaded on use (zod and the config come with them), so the HTTP commands start fast.
const tokens = async () => {
  const [{ ROLES, TokenStore }, { loadConfig }, limits, { parseBudget }] = await Promise.all([
    import('../api/tokens'),
    import('../config'),
    import('../budget/limits'),
    import('../spec/budget'),
  ]);
  const home = loadConfig().home;
  return { ROLES, store: new TokenStore(home), home, parseBudget, ...limits };
};
token
  .command('add <name>')
  .description('make a token (printed once) for a person or device')
  .option('--role <role>', 'viewer, submitter, approver or admin', 'viewer')
  .option(
    '--repos <globs>',
    'only these repos (comma-separated globs over names in NIGHTSHIFT_REPOS_DIR, e.g. "billing,web-*"); admins are never limited',
  )
  .option('--budget <budget>', "the token's model budget above its runs, as 20usd/day (docs/budgets.md)")
  .action(async (name: string, opts: { role: string; repos?: string; budget?: string }) => {
    const { ROLES, store, home, parseBudget, setBudget } = await tokens();
    if (!(ROLES as readonly string[]).includes(opts.role))
      throw new CliError(`--role must be one of ${ROLES.join(', ')}`, 2);
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name))
      throw new CliError('a token name is 1-64 letters, digits, ".", "_", "@" or "-"', 2);
    const repos = opts.repos
      ?.split(',')
      .map((g) => g.trim())
      .filter(Boolean);
    if (repos && !repos.length) throw new CliError('--repos needs at least one repo name or glob', 2);
    if (repos && opts.role === 'admin')
      throw new CliError('an admin token cannot be limited to repos: --repos needs another --role', 2);
    const budget = opts.budget === undefined ? undefined : parseBudget(opts.budget);
    if (budget && 'error' in budget) throw new CliError(`--budget: ${budget.error}`, 2);
    const made = store.create(name, opts.role as Role, repos);
    if (budget) setBudget(home, 'token', name, budget);
    print(made);
  });
token
  .command('ls')
  .description('list tokens (names, roles, repo limits, budgets)')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const { store, home, readBudgets } = await tokens();
    const budgets = readBudgets(home).token;
    const list = store.list().map((t) => ({ ...t, ...(budgets[t.name] ? { budget: budgets[t.name] } : {}) }));
    if (opts.json) return printJson({ tokens: list });
    print(
      list.length === 0
        ? 'no tokens'
        : table([
            ['NAME', 'ROLE', 'REPOS', 'BUDGET'],
            ...list.map((t) => [t.name, t.role, t.repos?.join(',') ?? 'all', t.budget ?? 'none']),
          ]),
    );
  });
token
  .command('rm <name>')
  .description('revoke a token (and remove its budget)')
  .action(async (name: string) => {
    const { store, home, setBudget } = await tokens();
    if (!store.remove(name)) throw new CliError(`no token named ${name}`, 4);
    setBudget(home, 'token', name, undefined);
    print(`token ${name} revoked`);
  });
addBudgetCommand(token, 'token', api, { print, printJson });

const schedule = program
  .command('schedule')
  .description('recurring specs (Temporal Schedules): add, ls, rm, trigger, pause, unpause');
schedule
  .command('add <file>')
  .description('run a spec on a cron schedule')
  .requiredOption('--cron <expr>', 'when, as a cron expression ("0 6 * * 1-5")')
  .option('--id <id>', 'schedule id (default: generated)')
  .option('--paused', 'create it paused')
  .option('--json', 'print JSON')
  .action(async (file: string, opts: { cron: string; id?: string; paused?: boolean; json?: boolean }) => {
    const { text, contentType } = readSpec(file);
    const specFormat =
      contentType === 'application/json' ? 'json' : contentType === 'application/yaml' ? 'yaml' : 'markdown';
    const res = await api.json<{ id: string }>('POST', '/v1/schedules', {
      id: opts.id,
      cron: opts.cron,
      spec: text,
      specFormat,
      paused: Boolean(opts.paused),
    });
    if (opts.json) printJson(res, 0);
    else print(`schedule ${res.id} added (${opts.cron})`);
  });
schedule
  .command('ls')
  .description('list schedules')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const res = await api.json<{ schedules: ScheduleSummary[] }>('GET', '/v1/schedules');
    if (opts.json) return printJson(res);
    const schedules = res?.schedules ?? [];
    print(schedules.length === 0 ? 'no schedules' : schedulesTable(schedules));
  });
schedule
  .command('rm <id>')
  .description('delete a schedule (runs it started go on)')
  .action(async (id: string) => {
    await api.json('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
    print(`schedule ${id} removed`);
  });
const scheduleActions: [name: string, description: string, done: string][] = [
  ['trigger', 'start a run of a schedule now', 'triggered'],
  ['pause', 'stop a schedule from starting runs', 'paused'],
  ['unpause', 'let a paused schedule start runs again', 'unpaused'],
];
for (const [name, description, done] of scheduleActions) {
  schedule
    .command(`${name} <id>`)
    .description(description)
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const res = await api.json('POST', `/v1/schedules/${encodeURIComponent(id)}/${name}`, {});
      if (opts.json) printJson(res, 0);
      else print(`schedule ${id} ${done}`);
    });
}

const image = program.command('image').description("the docker driver's sandbox images (docs/images.md)");
image
  .command('build')
  .description(
    "build an image FROM the sandbox image with toolchains: host directories copied in (their bin on PATH), Debian's packages installed; no image pulled",
  )
  .option(
    '--toolchain <name=dir|name=debian:pkgs>',
    'a host toolchain directory with a bin/, or Debian packages (repeatable): go=/usr/local/go, python=debian:python3-pytest',
    (value: string, all: string[]) => [...all, value],
    [] as string[],
  )
  .option('--tag <tag>', 'the image name (default: nightshift-sandbox-<names>:latest)')
  .option('--base <image>', 'the image to build FROM (default: NIGHTSHIFT_DOCKER_IMAGE, nightshift-sandbox:latest)')
  .action(async (opts: { toolchain: string[]; tag?: string; base?: string }) => {
    await (await import('./image')).imageBuild(opts, print);
  });

registerRepoCommands(program, api, { print, printJson });
registerForgeCommands(program, api, { print, printJson });
registerCampaignCommands(program, api, { print, printJson });
registerSpendCommand(program, api, { print, printJson });

// Titles, logs, diffs and reasons come from specs and agents: no escape sequence in them reaches the terminal.
let raw = false;
program.hook('preAction', () => {
  raw = Boolean(program.opts().raw);
});
filterOutput(process.stdout, () => raw);
filterOutput(process.stderr, () => raw);

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; everything else commander reports is a usage error.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof CliError) {
      process.stderr.write(`nightshift: ${err.message}\n`);
      for (const i of err.issues)
        process.stderr.write(`  ${i.field || 'spec'}${i.line ? ` at line ${i.line}` : ''}: ${i.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`nightshift: ${message.split('\n')[0] || 'unexpected error'}\n`);
    process.exitCode = 1;
  }
}

void main();
