// The architecture's import rules, checked by `npm run check:imports` (scripts/check-imports.mjs), which adds the two
// cycle rules: no runtime cycle between files, no cycle between top-level folders.

// Every top-level code folder; test/ is left out, as tests import whatever they test.
const SOURCE_FOLDERS = require('./tsconfig.json')
  .include.filter((folder) => folder !== 'test')
  .concat('web')
  .join('|');
// What the worker wires (the queue-typed activity maps): the rest of activities/ are the activities themselves.
const ACTIVITIES_SHARED = '^activities/index\\.ts$';
// The HTTP layer is started by the CLI and tested; a server entry beside the worker may start it too.
const API_CLIENTS = '^(api|cli|test)/|^workers/server\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'workflows-no-activity-files',
      comment:
        'Workflow code is replayed: it reaches activities only through the queue-typed maps of activities/index.ts.',
      severity: 'error',
      from: { path: '^workflows/' },
      to: { path: '^activities/', pathNot: '^activities/index\\.ts$' },
    },
    {
      name: 'workflows-activity-maps-type-only',
      comment:
        'The activity maps type the proxies; a runtime import would pull activity code into the workflow bundle.',
      severity: 'error',
      from: { path: '^workflows/' },
      to: { path: '^activities/index\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'api-only-from-cli-and-server',
      comment: 'The HTTP layer is an edge: domain code it shares with the worker belongs in a module of its own.',
      severity: 'error',
      from: { pathNot: API_CLIENTS },
      to: { path: '^api/' },
    },
    {
      name: 'activity-files-only-from-activities',
      comment: 'An activity file is run by the worker, not imported: what others need goes to a library or contracts/.',
      severity: 'error',
      // workflows/ has the stricter rules above.
      from: { pathNot: '^(activities|contracts|workflows)/' },
      to: { path: '^activities/', pathNot: ACTIVITIES_SHARED },
    },
    {
      name: 'activity-stages-apart',
      comment: 'A stage folder of activities/ shares with another only through libraries and contracts/.',
      severity: 'error',
      from: { path: '^activities/([^/]+)/' },
      to: { path: '^activities/[^/]+/', pathNot: '^activities/$1/' },
    },
    {
      name: 'contracts-only-spec',
      comment: 'The contracts are what workflows/ and activities/ share: they import only spec/ (and npm packages).',
      severity: 'error',
      from: { path: '^contracts/' },
      to: { pathNot: '^(contracts|spec)/' },
    },
  ],
  options: {
    // Only the source folders' own files: npm packages and Node built-ins are not part of the architecture.
    includeOnly: `^(${SOURCE_FOLDERS})/`,
    // Type-only imports are kept and marked `type-only` (import type, or every specifier `type`).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
