// Custom search attributes, so runs can be filtered by repo, status and title (API and Temporal Web).
// Plain literals rather than defineSearchAttributeKey, so workflow code imports only @temporalio/workflow.
import type { SearchAttributeKey, SearchAttributePair } from '@temporalio/common/lib/search-attributes';

export const STATUS_KEY: SearchAttributeKey<'KEYWORD'> = { name: 'NightshiftStatus', type: 'KEYWORD' };
export const REPO_KEY: SearchAttributeKey<'KEYWORD'> = { name: 'NightshiftRepo', type: 'KEYWORD' };
export const TITLE_KEY: SearchAttributeKey<'TEXT'> = { name: 'NightshiftTitle', type: 'TEXT' };

/**
 * A run on a forge: its pull request's number and the commit it pushed for review (workflows/specRun/forgeReview.ts).
 */
export const PULL_REQUEST_KEY: SearchAttributeKey<'KEYWORD'> = { name: 'NightshiftPullRequest', type: 'KEYWORD' };
export const HEAD_KEY: SearchAttributeKey<'KEYWORD'> = { name: 'NightshiftHead', type: 'KEYWORD' };

export const SEARCH_ATTRIBUTES = [STATUS_KEY, REPO_KEY, TITLE_KEY, PULL_REQUEST_KEY, HEAD_KEY];

/** A run's attributes at its start, by whoever starts it (the API, a schedule, a forge event). */
export function runSearchAttributes(spec: { repo: string; title: string }): SearchAttributePair[] {
  return [
    { key: STATUS_KEY, value: 'queued' },
    { key: REPO_KEY, value: spec.repo },
    { key: TITLE_KEY, value: spec.title },
  ];
}
