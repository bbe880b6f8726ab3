/** Tests run from the compiled output (`npm test` builds first), against a real Temporal dev server. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  globalSetup: '<rootDir>/dist/test/setup/globalSetup.js',
  globalTeardown: '<rootDir>/dist/test/setup/globalTeardown.js',
  testTimeout: 180000,
  maxWorkers: 2,
  verbose: true,
};
