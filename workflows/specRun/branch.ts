/** nightshift/<title slug>-<last part of the run id>: unique per run, readable in `git branch`. */
export function defaultBranch(title: string, runId: string): string {
  const slug =
    title
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40)
      .replace(/-+$/, '') || 'run';
  // Run ids made by the API (ns-<hex>) are readable as they are; schedule-made ones end in a timestamp: hash those.
  const short = /^ns-([a-z0-9]{6,16})$/.exec(runId)?.[1] ?? fnv1a(runId);
  return `nightshift/${slug}-${short}`;
}

function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}
