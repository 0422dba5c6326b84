/**
 * The multi-process conformance case: our SQLite adapter and the example host's adapter pass it;
 * the planted adapters that the single-process suite lets through (a synchronous read-then-insert
 * cap, a deferred transaction that meets SQLITE_BUSY) fail it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteRepositories } from '../../../adapters/sqlite';
import { createHostRepositories } from '../../../examples/host-own-database/repositories';
import { openPanelDatabase } from '../../../examples/host-own-database/schema';
import {
  repositoryCases,
  runRepositoriesAcrossProcesses,
  runRepositoryCase,
  testRepositoriesAcrossProcesses,
  type ProcessSuiteOptions,
} from '../../../src/testing';
import { openPlantedRepositories, type PlantedVariant } from './planted-repositories';

const CHILD = new URL('./repositories.child.ts', import.meta.url);
const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function freshFile(): string {
  const directory = mkdtempSync(join(tmpdir(), 'ii-procs-'));
  directories.push(directory);
  return join(directory, 'shared.db');
}

function options(adapter: 'sqlite' | 'host-example' | PlantedVariant): ProcessSuiteOptions {
  return {
    name: adapter,
    childModule: CHILD,
    setup() {
      const filename = freshFile();
      if (adapter === 'host-example') {
        const db = openPanelDatabase(filename);
        return { args: { adapter, filename }, repositories: { ...createHostRepositories(db), close: async () => void db.close() } };
      }
      return {
        args: { adapter, filename },
        repositories: adapter === 'sqlite' ? createSqliteRepositories({ filename }) : openPlantedRepositories(filename, adapter),
      };
    },
  };
}

testRepositoriesAcrossProcesses({ describe, it }, options('sqlite'));
testRepositoriesAcrossProcesses({ describe, it }, options('host-example'));

describe('the multi-process case catches what one process cannot', () => {
  const singleProcessCases = repositoryCases.filter((c) => c.name.startsWith('images: '));

  it.each(['sync-cap', 'deferred'] as const)(
    'the planted %s adapter passes every single-process images case but fails across processes',
    async (variant) => {
      for (const testCase of singleProcessCases) {
        const repositories = openPlantedRepositories(freshFile(), variant);
        await runRepositoryCase(testCase.name, repositories);
        await repositories.close?.();
      }
      const result = await runRepositoriesAcrossProcesses(options(variant));
      console.info(
        `planted ${variant}: ${result.rounds} rounds, ${result.violations.length} violations, e.g. ${result.violations.slice(0, 3).join(' | ')}`,
      );
      expect(result.violations.length).toBeGreaterThan(0);
      const expected = variant === 'sync-cap' ? /racing insertIfUnderLimit against a cap of 2 left [3-9] images/ : /SQLITE_BUSY/;
      expect(
        result.violations.some((v) => expected.test(v)),
        result.violations.join('\n'),
      ).toBe(true);
    },
    180_000,
  );
});
