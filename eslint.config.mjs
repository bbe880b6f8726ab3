// `npm run lint`: typescript-eslint's type-checked rules where they catch real bugs here, and the workflow sandbox's
// rules as lint errors rather than replay failures. Zero warnings: every rule is an error or off.
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const { printWidth } = JSON.parse(readFileSync(new URL('.prettierrc.json', import.meta.url), 'utf8'));
const nodeBuiltins = [...builtinModules.filter((m) => !m.startsWith('_')), 'node:*'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      // `_name`: deliberately unused (a rest sibling dropped from an object, an express error handler's 4th argument).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Prettier's printWidth, for the lines prettier leaves long: comments count; a line holding a string, template
      // literal, regex or URL does not, as those cannot be split. (Core max-len: deprecated in favour of
      // @stylistic/eslint-plugin, which is not installed, but kept until ESLint 11.)
      'max-len': [
        'error',
        {
          code: printWidth,
          ignoreUrls: true,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
        },
      ],
    },
  },
  {
    // Tests read untyped JSON answers and load modules lazily.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Workflow code is replayed: no I/O, so no Node built-ins and no runtime import of what does I/O (types are fine).
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: nodeBuiltins,
              message: 'workflow code is deterministic: no Node built-ins (do I/O in an activity)',
            },
            {
              group: [
                '**/activities',
                '**/activities/**',
                '**/sandbox',
                '**/sandbox/**',
                '**/agents',
                '**/agents/**',
                '**/store',
                '**/store/**',
                '**/workers',
                '**/workers/**',
                '**/runtime',
                '**/runtime/**',
                '**/git',
                '**/git/**',
                '**/judge',
                '**/judge/**',
                '**/workspaces',
                '**/workspaces/**',
                '**/gateway',
                '**/gateway/**',
                '**/secrets',
                '**/secrets/**',
                '**/proof',
                '**/proof/**',
                '**/admission',
                '**/admission/**',
                '**/forges',
                '**/forges/**',
              ],
              allowTypeImports: true,
              message:
                'workflow code imports what does I/O (activities and the libraries they call) as types only (import type …)',
            },
          ],
        },
      ],
    },
  },
);
