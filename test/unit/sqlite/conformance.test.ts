import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { createSqliteRepositories, type SqliteRepositories } from '../../../adapters/sqlite';
import { testRepositories } from '../../../src/testing';

testRepositories({ describe, it }, { name: 'sqlite (:memory:)', create: () => createSqliteRepositories({ filename: ':memory:' }) });

const directories = new WeakMap<SqliteRepositories, string>();
testRepositories(
  { describe, it },
  {
    name: 'sqlite (WAL file)',
    create() {
      const directory = mkdtempSync(join(tmpdir(), 'ii-sqlite-'));
      const repositories = createSqliteRepositories({ filename: join(directory, 'images.db') });
      directories.set(repositories, directory);
      return repositories;
    },
    async destroy(repositories) {
      const sqlite = repositories as SqliteRepositories;
      await sqlite.close();
      const directory = directories.get(sqlite);
      if (directory) rmSync(directory, { recursive: true, force: true });
    },
  },
);
