// ESLint flat config: typescript-eslint's recommended rules over every package.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // *.generated.js: a generator's output (the planner's profile validator), checked by its own tests, not by hand.
  { ignores: ['tmp/**', '**/dist/**', '**/out-tsc/**', '**/node_modules/**', '.nx/**', 'coverage/**', '**/*.generated.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Plain JavaScript entry points (the CLI launcher) run on Node.
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', URL: 'readonly', console: 'readonly' } },
  },
  {
    files: ['**/*.test.ts', '**/__tests__/**'],
    rules: { '@typescript-eslint/no-unused-expressions': 'off' },
  },
);
