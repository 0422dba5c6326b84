import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layers from './scripts/lint/layers.js';

/**
 * The layering (docs/architecture.md, "Layers"): each zone lists the files it covers and what they
 * may not import (`forbid`, `forbidPackages`) or the only things they may import (`allow`, `allowPackages`). A folder
 * ends in `/`. The build fails on a breach; test/unit/house/layers.test.ts proves each zone catches
 * a planted import.
 */
const layerZones = [
  {
    files: ['src/'],
    forbid: ['drivers/', 'adapters/', 'examples/'],
    reason: 'the core never imports drivers, adapters or examples; the host passes drivers in',
  },
  {
    files: ['src/billing/', 'src/lifecycle.ts'],
    allow: ['src/billing/', 'src/model/', 'src/errors.ts', 'src/util/validate.ts'],
    allowPackages: ['zod'],
    reason:
      'billing and the lifecycle are pure: they import only src/model, src/errors.ts, src/util/validate.ts (zod parsing into InstanceImagesError) and zod; a service in src/services does the I/O',
  },
  {
    files: ['drivers/'],
    forbid: ['src/services/', 'adapters/', 'examples/'],
    reason: 'drivers implement ports; they never import services, adapters or examples',
  },
  {
    files: ['src/', 'drivers/', 'adapters/http/', 'adapters/express/', 'adapters/sqlite/', 'adapters/postgres/', 'adapters/sql-common/'],
    forbidPackages: ['bullmq', 'ioredis'],
    reason: 'bullmq and ioredis are optional peers loaded only by instance-images/adapters/bullmq',
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'docs/api/**', 'node_modules/**', 'coverage/**', '.tmp/**'] },
  // A disable comment that no longer disables anything fails too, so an exception cannot outlive its reason.
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**', 'drivers/**', 'adapters/**'],
    plugins: { layers },
    rules: {
      'layers/imports': ['error', { root: import.meta.dirname, packageName: 'instance-images', zones: layerZones }],
    },
  },
);
