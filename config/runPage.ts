/** The run's page in the web UI. */
export function runPageUrl(publicUrl: string, runId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/#/runs/${runId}`;
}
