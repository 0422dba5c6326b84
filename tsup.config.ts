import { defineConfig } from 'tsup';

/**
 * Every public entry point: the root, `instance-images/schemas`, `instance-images/testing`,
 * `instance-images/http` (the web-standard handler), and one subpath per driver and adapter. The key is the output path under dist/ (without extension);
 * package.json's `exports` map must list the same subpaths (checked by `npm run check:package`).
 */
export const entries: Record<string, string> = {
  index: 'src/index.ts',
  'schemas/index': 'src/schemas/index.ts',
  'testing/index': 'src/testing/index.ts',
  'drivers/exec/index': 'drivers/exec/index.ts',
  'drivers/storage/index': 'drivers/storage/index.ts',
  'drivers/local/index': 'drivers/storage/local/index.ts',
  'drivers/nfs/index': 'drivers/storage/nfs/index.ts',
  'drivers/s3/index': 'drivers/storage/s3/index.ts',
  'drivers/libvirt/index': 'drivers/hypervisor/libvirt/index.ts',
  'drivers/nbd/index': 'drivers/nbd/index.ts',
  'adapters/sqlite/index': 'adapters/sqlite/index.ts',
  'adapters/postgres/index': 'adapters/postgres/index.ts',
  'http/index': 'adapters/http/index.ts',
  'adapters/express/index': 'adapters/express/index.ts',
  'cli/index': 'src/cli/index.ts',
  'client/index': 'src/client/index.ts',
  'adapters/bullmq/index': 'adapters/bullmq/index.ts',
};

const external = ['ssh2', '@aws-sdk/client-s3', 'express', 'pg', 'better-sqlite3', 'bullmq', 'ioredis', 'vitest'];

export default defineConfig([
  {
    entry: entries,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    // `npm run build` empties dist/ first; the two builds below run side by side.
    clean: false,
    target: 'node20',
    platform: 'node',
    splitting: true,
    treeshake: true,
    // Heavy SDKs stay external: they are optional peer dependencies, loaded only by the subpath that needs them.
    external,
  },
  // The `instance-images` command (package.json `bin`): one ESM file with its shebang.
  {
    entry: { 'cli/main': 'src/cli/main.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
    platform: 'node',
    external,
  },
]);
