/**
 * The fast tier (`npm run test:unit`): workflows on stub activities and the pure parts, against the Temporal dev
 * server only (no Podman, no apt-get, no network). `npm test` runs these files too, within the whole suite.
 */
module.exports = {
  ...require('./jest.config'),
  roots: ['<rootDir>/dist/test/unit'],
  globalSetup: '<rootDir>/dist/test/setup/unitSetup.js',
  // test/unit/workflow.test.ts's runs, all at once: they mostly wait on the server.
  maxConcurrency: 10,
};
