// Custom search attributes, so runs can be filtered by repo, status and title (API and Temporal Web).
// Plain literals rather than defineSearchAttributeKey, so workflow code imports only @temporalio/workflow.
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';

export const STATUS_KEY: SearchAttributeKey<'KEYWORD'> = { name: 'NightshiftStatus', type: 'KEYWORD' };
export const REPO_KEY: SearchAttributeKey<'KEYWORD'> = { name: 'NightshiftRepo', type: 'KEYWORD' };
export const TITLE_KEY: SearchAttributeKey<'TEXT'> = { name: 'NightshiftTitle', type: 'TEXT' };

export const SEARCH_ATTRIBUTES = [STATUS_KEY, REPO_KEY, TITLE_KEY];
