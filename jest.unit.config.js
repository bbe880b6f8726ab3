/**
 * The unit tier (`npm run test:unit`): the pure parts and the replay of recorded histories, on Node and git alone: no
 * Temporal server, no Podman, no apt-get, no network. `npm test` runs these files too, within the whole suite.
 */
module.exports = {
  ...require('./jest.config'),
  roots: ['<rootDir>/dist/test/unit'],
  globalSetup: '<rootDir>/dist/test/setup/unitSetup.js',
};
