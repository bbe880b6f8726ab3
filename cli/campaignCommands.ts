import type { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { CampaignState } from '../contracts/campaign';
import type { ApiClient } from './client';
import { CliError } from './client';

/** `nightshift campaign start|status|proof|approve|retry|pause|resume|cancel`: campaigns (docs/campaigns.md). */
export function registerCampaignCommands(
  program: Command,
  api: ApiClient,
  out: { print: (text: string) => void; printJson: (value: unknown, indent?: number) => void },
): void {
  const campaign = program.command('campaign').description('one spec over many repos (docs/campaigns.md)');
  campaign
    .command('start <file>')
    .description('start a campaign: a spec whose `repos:` lists the repos')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      if (!existsSync(file)) throw new CliError(`no such file: ${file}`, 2);
      const contentType = /\.json$/i.test(file)
        ? 'application/json'
        : /\.ya?ml$/i.test(file)
          ? 'application/yaml'
          : 'text/markdown';
      const res = await api.request('POST', '/v1/campaigns', { body: readFileSync(file, 'utf8'), contentType });
      const started = res.json<{ id: string; url: string; repos: number }>();
      if (opts.json) out.printJson(started);
      else out.print(`${started.id}  ${started.repos} repos  ${started.url}`);
    });
  campaign
    .command('status <id>')
    .description("a campaign's counts, and one line per repo")
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const state = await api.json<CampaignState & { unattended: number | null }>(
        'GET',
        `/v1/campaigns/${encodeURIComponent(id)}`,
      );
      if (opts.json) return out.printJson(state);
      out.print(campaignText(state));
    });
  campaign
    .command('proof <id>')
    .description("write the campaign's signed proof as it last ended (check it with `nightshift verify FILE`)")
    .option('-o, --output <file>', 'the file to write (default: <id>-proof.json)')
    .action(async (id: string, opts: { output?: string }) => {
      const proof = (await api.request('GET', `/v1/campaigns/${encodeURIComponent(id)}/proof`)).bytes;
      const file = opts.output ?? `${id}-proof.json`;
      writeFileSync(file, proof);
      out.print(file);
    });
  const actions: [string, string][] = [
    ['approve', 'approve every run awaiting approval (approval.mode: batch)'],
    ['retry', 'run the failed repos again, from scratch'],
    ['pause', 'start no new runs'],
    ['resume', 'start runs again'],
    ['cancel', 'cancel every run not ended'],
  ];
  for (const [action, description] of actions)
    campaign
      .command(`${action} <id>`)
      .description(description)
      .option('-m, --message <comment>', 'comment')
      .action(async (id: string, opts: { message?: string }) => {
        await api.json('POST', `/v1/campaigns/${encodeURIComponent(id)}/${action}`, { comment: opts.message ?? '' });
        out.print(`${id}: ${action} sent`);
      });
}

/**
 * The counts (merged ones among the succeeded), then a line per repo: its state, attempts, run, and what it delivered
 * (its pull request, and who merged it) or why it failed.
 */
export function campaignText(c: CampaignState & { unattended: number | null }): string {
  const counts = Object.entries(c.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  const unattended = c.unattended === null ? '' : `; ${Math.round(c.unattended * 100)}% unattended`;
  const width = Math.max(...c.repos.map((r) => r.repo.length));
  return [
    `${c.id}  ${c.title}`,
    `status     ${c.status} (${counts}${unattended}); concurrency ${c.concurrency}, approval ${c.approvalMode}`,
    ...c.repos.map((r) => {
      const pullRequest = r.pullRequest ? `  ${r.pullRequest.url}${r.merged ? ` (merged by ${r.merged.by})` : ''}` : '';
      return `  ${r.repo.padEnd(width)}  ${r.state.padEnd(17)} #${r.attempts}  ${r.runId}${pullRequest}${r.reason ? `: ${r.reason}` : ''}`;
    }),
  ].join('\n');
}
