/**
 * The layering is a lint rule that fails the build (eslint.config.js, `layers/imports`): each zone
 * is proven here by linting a planted import with the project's own ESLint config, and a file that
 * keeps to its layer lints clean.
 */
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
// The project's own config, with only the layering rule run: the planted files exist only as text,
// and TypeScript's project service (which the type-aware rules need) reads files from disk.
const eslint = new ESLint({
  cwd: root,
  overrideConfigFile: `${root}eslint.config.js`,
  overrideConfig: { languageOptions: { parserOptions: { projectService: false } } },
  ruleFilter: ({ ruleId }) => ruleId === 'layers/imports',
});

/** The errors (layering rule, or a parse error) for `code` as if it were the file at `file`. */
async function layerErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
  return (result?.messages ?? []).filter((message) => message.severity === 2).map((message) => `${message.ruleId}: ${message.message}`);
}

describe('layering lint rule', () => {
  it.each([
    ['src/planted.ts', "export { createLocalExecutor } from '../drivers/exec/local';", 'drivers/exec/local'],
    ['src/services/planted.ts', "export type { SqliteRepositoriesOptions } from '../../adapters/sqlite';", 'adapters/sqlite'],
    ['src/services/planted.ts', "export const panel = await import('../../examples/express-panel/panel');", 'examples/express-panel/panel'],
    ['src/testing/planted.ts', "export * from 'instance-images/drivers/s3';", 'drivers/s3'],
  ])('src never imports drivers, adapters or examples: %s importing %s fails', async (file, code, target) => {
    const messages = await layerErrors(file, code);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(`layers/imports: ${file} may not import ${target}`);
    expect(messages[0]).toContain('the core never imports drivers');
  });

  it.each([
    ['src/billing/planted.ts', "export type { UsageRepository } from '../ports/repositories';", 'src/ports/repositories'],
    ['src/billing/planted.ts', "export { ImageService } from '../services/images';", 'src/services/images'],
    ['src/billing/planted.ts', "export { readFileSync } from 'node:fs';", 'the package node:fs'],
    ['src/billing/planted.ts', "export { default as mitt } from 'mitt';", 'the package mitt'],
    ['src/lifecycle.ts', "export type { Logger } from './ports/logger';", 'src/ports/logger'],
  ])('billing and the lifecycle import only model, errors and zod: %s with %s fails', async (file, code, target) => {
    const messages = await layerErrors(file, code);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(`layers/imports: ${file} may not import ${target}`);
    expect(messages[0]).toContain('billing and the lifecycle are pure');
  });

  it.each([
    ['drivers/storage/local/planted.ts', "export type { ImageService } from '../../../src/services/images';", 'src/services/images'],
    ['drivers/exec/planted.ts', "export { createSqliteRepositories } from '../../adapters/sqlite';", 'adapters/sqlite'],
  ])('drivers never import services or adapters: %s with %s fails', async (file, code, target) => {
    const messages = await layerErrors(file, code);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(`layers/imports: ${file} may not import ${target}`);
    expect(messages[0]).toContain('drivers implement ports');
  });

  it.each([
    ['src/tasks/planted.ts', "export { Queue } from 'bullmq';", 'the package bullmq'],
    ['src/services/planted.ts', "export type { Redis } from 'ioredis';", 'the package ioredis'],
    ['adapters/postgres/planted.ts', "export const load = () => import('bullmq');", 'the package bullmq'],
  ])('only adapters/bullmq imports bullmq and ioredis: %s with %s fails', async (file, code, target) => {
    const messages = await layerErrors(file, code);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(`layers/imports: ${file} may not import ${target}`);
    expect(messages[0]).toContain('optional peers');
  });

  it('a type-only import, a dynamic import() and a require() count as imports too', async () => {
    const code = [
      "import type { Executor } from '../../drivers/exec/local';",
      "export type E = Executor | typeof import('../../adapters/express');",
      "export const later = () => import('../../drivers/storage/builtins');",
    ].join('\n');
    expect(await layerErrors('src/services/planted.ts', code)).toEqual([
      expect.stringContaining('may not import drivers/exec/local'),
      expect.stringContaining('may not import adapters/express'),
      expect.stringContaining('may not import drivers/storage/builtins'),
    ]);
  });

  it.each([
    [
      'src/billing/planted.ts',
      "export { DecimalStringSchema } from '../model/common';\nexport { InstanceImagesError } from '../errors';\nexport { parseOrThrow } from '../util/validate';\nexport { Rational } from './decimal';\nexport { z } from 'zod';\n",
    ],
    ['src/services/planted.ts', "export type { Executor } from '../ports/executor';\nexport { InstanceImagesError } from '../errors';\n"],
    ['drivers/exec/planted.ts', "export type { Executor } from '../../src/ports/executor';\nexport { shellQuote } from './quote';\n"],
    [
      'adapters/bullmq/planted.ts',
      "export { Queue } from 'bullmq';\nexport { Redis } from 'ioredis';\nexport type { TaskQueue } from '../../src';\n",
    ],
  ])('a file that keeps to its layer lints clean: %s', async (file, code) => {
    expect(await layerErrors(file, code)).toEqual([]);
  });
});
