import { partOfTheTests } from '../../judge/baseTests';

// The files the base's tests are made of (docs/checks.md, "The base's tests judge the change"): tests, their helpers
// and data under test directories, test-named files anywhere; never the code under test, nor installed code.
describe('partOfTheTests', () => {
  test.each([
    'test/add.test.js',
    'test/helpers.js',
    'test/data/cases.json',
    'tests/test_calc.py',
    'src/__tests__/util.ts',
    'spec/fixtures/a.yml',
    'pkg/testdata/in.txt',
    'src/add.test.js',
    'calc/calc_test.go',
    'conftest.py',
    'lib/__mocks__/fs.js',
  ])('%s is part of the tests', (f) => {
    expect(partOfTheTests(f)).toBe(true);
  });
  test.each([
    'src/add.js',
    'src/testing.js',
    'lib/contest.py',
    'node_modules/x/test/a.js',
    'vendor/y/tests/z.py',
    '.venv/lib/tests/t.py',
    'README.md',
  ])('%s is not', (f) => {
    expect(partOfTheTests(f)).toBe(false);
  });
});
