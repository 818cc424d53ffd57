import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.stack/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', fetch: 'readonly', AbortSignal: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', performance: 'readonly', Buffer: 'readonly', FormData: 'readonly', Blob: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Tests read JSON responses loosely.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Only the storage modules may import the SDKs.
    files: ['src/**/*.ts'],
    ignores: ['src/storage/**', 'src/media/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['mongodb', '@aws-sdk/*', '@smithy/*', 'ioredis'], message: 'SDK imports belong in src/storage/.', allowTypeImports: true },
            { group: ['sharp'], message: 'sharp belongs in src/media/.' },
          ],
        },
      ],
    },
  },
);
