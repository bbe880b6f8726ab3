/**
 * The workflow tier (`npm run test:workflow`): the real specRun workflow on stub activities, against the Temporal dev
 * server only (no Podman, no apt-get, no network). `npm test` runs these files too, within the whole suite.
 */
module.exports = {
  ...require('./jest.config'),
  roots: ['<rootDir>/dist/test/workflow'],
  globalSetup: '<rootDir>/dist/test/setup/workflowSetup.js',
  // test/workflow/workflow.test.ts's runs, all at once: they mostly wait on the server.
  maxConcurrency: 10,
};
