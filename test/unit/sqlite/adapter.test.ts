import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteRepositories, migrateSqlite, sqliteMigrations } from '../../../adapters/sqlite';
import { latestVersion } from '../../../adapters/sql-common/migrations';
import { isInstanceImagesError } from '../../../src';
import { makeImage, makeStorage } from '../../../src/testing';
import { sqlAdapterCases } from './sql-adapter-cases';

const codeOf = (run: () => unknown): string | undefined => {
  try {
    run();
  } catch (error) {
    return isInstanceImagesError(error) ? error.code : `not ours: ${String(error)}`;
  }
  return undefined;
};

describe('sqlite adapter behavior', () => {
  for (const testCase of sqlAdapterCases) {
    it(testCase.name, async () => {
      const repositories = createSqliteRepositories({ filename: ':memory:' });
      try {
        await testCase.run(repositories);
      } finally {
        await repositories.close();
      }
    });
  }
});

describe('sqlite files and migrations', () => {
  let directory: string;
  let file: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'ii-sqlite-'));
    file = join(directory, 'images.db');
  });
  afterEach(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  it('opens files in WAL mode with foreign keys and a busy timeout', async () => {
    const repositories = createSqliteRepositories({ filename: file, busyTimeoutMs: 1234 });
    expect(repositories.database.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(repositories.database.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(repositories.database.pragma('busy_timeout', { simple: true })).toBe(1234);
    await repositories.close();
    await repositories.close();
    expect(repositories.database.open).toBe(false);
  });

  it('re-running the migrations on an existing file changes nothing and keeps the data', async () => {
    const first = createSqliteRepositories({ filename: file });
    const image = makeImage();
    await first.images.insert(image);
    await first.close();
    const second = createSqliteRepositories({ filename: file });
    expect(migrateSqlite(second.database)).toEqual({ applied: [], version: latestVersion(sqliteMigrations) });
    expect(second.database.prepare('SELECT version, name FROM ii_migrations').all()).toEqual(
      sqliteMigrations.map((m) => ({ version: m.version, name: m.name })),
    );
    expect(await second.images.get(image.id)).toEqual(image);
    await second.close();
  });

  it('refuses a file migrated by a newer release and closes it', () => {
    const repositories = createSqliteRepositories({ filename: file });
    repositories.database
      .prepare('INSERT INTO ii_migrations (version, name, applied_at) VALUES (?, ?, ?)')
      .run(99, 'from the future', Date.now());
    repositories.database.close();
    expect(codeOf(() => createSqliteRepositories({ filename: file }))).toBe('INVALID_STATE');
    // the refused connection was closed: the file can be removed and reopened cleanly
    const db = new Database(file);
    expect(db.prepare('SELECT max(version) AS v FROM ii_migrations').get()).toEqual({ v: 99 });
    db.close();
  });

  it('with migrate: false, requires a current schema', async () => {
    expect(codeOf(() => createSqliteRepositories({ filename: file, migrate: false }))).toBe('INVALID_STATE');
    await createSqliteRepositories({ filename: file }).close();
    const repositories = createSqliteRepositories({ filename: file, migrate: false });
    expect(await repositories.images.countActive('a')).toBe(0);
    await repositories.close();
  });

  it("lives in a host's own connection next to its tables, and leaves it open and its pragmas alone", async () => {
    const host = new Database(file);
    host.exec('CREATE TABLE accounts (id TEXT PRIMARY KEY)');
    host.pragma('foreign_keys = OFF');
    const repositories = createSqliteRepositories({ database: host });
    expect(host.pragma('foreign_keys', { simple: true })).toBe(0);
    const storage = makeStorage();
    await repositories.storages.insert(storage);
    await repositories.storages.bind(storage.id, 'hv-1', new Date());
    // without the foreign-key pragma, deleting a storage still removes its bindings
    expect(await repositories.storages.delete(storage.id)).toBe(true);
    expect(await repositories.storages.listBindings()).toEqual([]);
    await repositories.close();
    expect(host.open).toBe(true);
    const tables = (host.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map(
      (t) => t.name,
    );
    expect(tables.filter((name) => !name.startsWith('ii_'))).toEqual(['accounts']);
    host.close();
  });

  it('validates its options and names the field', () => {
    const fieldsOf = (options: Parameters<typeof createSqliteRepositories>[0]) => {
      try {
        createSqliteRepositories(options);
      } catch (error) {
        if (isInstanceImagesError(error, 'VALIDATION_FAILED')) return error.fields.map((f) => f.path);
        throw error;
      }
      throw new Error('expected VALIDATION_FAILED');
    };
    expect(fieldsOf({})).toEqual(['filename']);
    expect(fieldsOf({ filename: ':memory:', database: new Database(':memory:') })).toEqual(['filename']);
    expect(fieldsOf({ filename: ':memory:', busyTimeoutMs: -1 })).toEqual(['busyTimeoutMs']);
    expect(fieldsOf({ database: {} as Database.Database })).toEqual(['database']);
  });
});
