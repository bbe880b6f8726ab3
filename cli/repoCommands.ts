import type { Command } from 'commander';
import type { ApiClient } from './client';
import { CliError } from './client';
import { table } from './format';
import { addBudgetCommand } from './spendCommands';

interface Listing {
  name: string;
  kind: 'local' | 'remote';
  url?: string;
  forge?: string;
  credential?: string;
}

interface Added {
  repo: { name: string; url: string; forge: string };
  webhook: { url: string; secret: string };
}

/**
 * `nightshift repo add|ls|rm`: registered remote repos (config/remotes.ts), through the API like every other command.
 */
export function registerRepoCommands(
  program: Command,
  api: ApiClient,
  out: { print: (text: string) => void; printJson: (value: unknown, indent?: number) => void },
): void {
  const repo = program
    .command('repo')
    .description('repos a spec may name: register remote ones (add, rm), list all (ls)');
  repo
    .command('add <name> <url>')
    .description('register a remote repo (https, http or ssh:// URL); prints its webhook URL and secret, once')
    .option('--forge <forge>', 'gitea or github (none: push only)', 'none')
    .option(
      '--credential <NAME>',
      "the NAME of a server secret (secrets.env or the workers' env) holding its token or ssh key; never the value",
    )
    .option('--approvers <users>', 'forge users allowed to approve, comma-separated')
    .option('--json', 'print JSON')
    .action(
      async (
        name: string,
        url: string,
        opts: { forge: string; credential?: string; approvers?: string; json?: boolean },
      ) => {
        const approvers = namesOf(opts.approvers, '--approvers');
        const added = await api.json<Added>('POST', '/v1/repos', {
          name,
          url,
          forge: opts.forge,
          ...(opts.credential ? { credential: opts.credential } : {}),
          approvers,
        });
        if (opts.json) return out.printJson(added);
        out.print(
          [
            `repo ${added.repo.name} registered (${added.repo.url}, forge ${added.repo.forge})`,
            `webhook URL:    ${added.webhook.url}`,
            `webhook secret: ${added.webhook.secret}`,
            'The secret is shown this once: give both to the forge (content type JSON).',
          ].join('\n'),
        );
      },
    );
  repo
    .command('ls')
    .description('registered remote repos and local ones (in the repos directory) this token may use')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const res = await api.json<{ repos: Listing[] }>('GET', '/v1/repos');
      if (opts.json) return out.printJson(res);
      const repos = res?.repos ?? [];
      out.print(
        repos.length === 0
          ? 'no repos'
          : table([
              ['NAME', 'KIND', 'FORGE', 'CREDENTIAL', 'URL'],
              ...repos.map((r) => [r.name, r.kind, r.forge ?? '', r.credential ?? '', r.url ?? '']),
            ]),
      );
    });
  repo
    .command('rm <name>')
    .description('unregister a remote repo')
    .action(async (name: string) => {
      await api.json('DELETE', `/v1/repos/${encodeURIComponent(name)}`);
      out.print(`repo ${name} removed`);
    });
  addBudgetCommand(repo, 'repo', api, out);
}

/** Comma-separated names, or a usage error naming the option when it was given empty. */
function namesOf(value: string | undefined, option: string): string[] {
  const names =
    value
      ?.split(',')
      .map((a) => a.trim())
      .filter(Boolean) ?? [];
  if (value !== undefined && !names.length) throw new CliError(`${option} needs at least one name`, 2);
  return names;
}

/** `nightshift forge add|ls|rm`: registered forges (config/forges.ts), what campaign selectors list repos on. */
export function registerForgeCommands(
  program: Command,
  api: ApiClient,
  out: { print: (text: string) => void; printJson: (value: unknown, indent?: number) => void },
): void {
  const forge = program.command('forge').description("forges a campaign's `repos:` selector may list repos on");
  forge
    .command('add <name> <url>')
    .description('register a Gitea (its web address) for campaign selectors; prints its webhook URL and secret, once')
    .requiredOption('--credential <NAME>', "the NAME of a server secret holding the workers' token there")
    .requiredOption('--owners <owners>', 'the users or organisations selectors may reach, comma-separated')
    .option('--approvers <users>', 'forge users allowed to approve runs on the repos it selects, comma-separated')
    .action(async (name: string, url: string, opts: { credential: string; owners: string; approvers?: string }) => {
      const body = {
        name,
        kind: 'gitea',
        url,
        credential: opts.credential,
        owners: namesOf(opts.owners, '--owners'),
        approvers: namesOf(opts.approvers, '--approvers'),
      };
      const { forge: added, webhook } = await api.json<{
        forge: { name: string; url: string };
        webhook: { url: string; secret: string };
      }>('POST', '/v1/forges', body);
      out.print(
        [
          `forge ${added.name} registered (${added.url}); owners ${body.owners.join(', ')}`,
          `webhook URL:    ${webhook.url}`,
          `webhook secret: ${webhook.secret}`,
          'On the forge, give each owner a webhook with these (content type application/json, event pull_request):',
          'its merged pull requests count as merged in their campaigns. The secret is not shown again.',
        ].join('\n'),
      );
    });
  forge
    .command('ls')
    .description('registered forges')
    .action(async () => {
      const { forges } = await api.json<{
        forges: { name: string; url: string; credential: string; owners: string[] }[];
      }>('GET', '/v1/forges');
      out.print(
        forges.length === 0
          ? 'no forges'
          : table([
              ['NAME', 'URL', 'CREDENTIAL', 'OWNERS'],
              ...forges.map((f) => [f.name, f.url, f.credential, f.owners.join(',')]),
            ]),
      );
    });
  forge
    .command('rm <name>')
    .description('unregister a forge (the repos it registered stay)')
    .action(async (name: string) => {
      await api.json('DELETE', `/v1/forges/${encodeURIComponent(name)}`);
      out.print(`forge ${name} removed`);
    });
}
