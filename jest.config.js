/**
 * Tests run from the compiled output (`npm test` builds first), against a real Temporal dev server: the whole suite,
 * test/unit/ (jest.unit.config.js) and test/workflow/ (jest.workflow.config.js) included.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  // The PostgreSQL cluster's own test needs what `npm run test:cluster` builds and installs.
  testPathIgnorePatterns: process.env.NIGHTSHIFT_TEST_CLUSTER ? [] : ['/cluster\\.test\\.js$'],
  globalSetup: '<rootDir>/dist/test/setup/globalSetup.js',
  globalTeardown: '<rootDir>/dist/test/setup/globalTeardown.js',
  testTimeout: 180000,
  maxWorkers: 2,
  verbose: true,
};
