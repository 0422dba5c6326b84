/**
 * `Image.compressed` (added after the first schema) round-trips through SQLite, and images stored
 * before migration 2 read back without it, as they were written.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteRepositories, migrateSqlite, sqliteMigrations } from '../../../adapters/sqlite';
import { latestVersion } from '../../../adapters/sql-common/migrations';
import { makeImage } from '../../../src/testing';

describe('sqlite: the compress choice of an image', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'ii-sqlite-compressed-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it('true, false and absent round-trip, also through a transition patch', async () => {
    const repositories = createSqliteRepositories({ filename: ':memory:' });
    const yes = makeImage({ id: 'img-yes', compressed: true });
    const no = makeImage({ id: 'img-no', compressed: false });
    const absent = makeImage({ id: 'img-absent' });
    for (const image of [yes, no, absent]) await repositories.images.insert(image);
    expect(await repositories.images.get('img-yes')).toEqual(yes);
    expect(await repositories.images.get('img-no')).toEqual(no);
    const read = await repositories.images.get('img-absent');
    expect(read).toEqual(absent);
    expect(read && 'compressed' in read).toBe(false);
    const patched = await repositories.images.update('img-absent', { compressed: true }, new Date());
    expect(patched?.compressed).toBe(true);
    expect((await repositories.images.get('img-absent'))?.compressed).toBe(true);
    await repositories.close();
  });

  it('a database at version 1 gets the column, and images without the choice read back without it', async () => {
    const file = join(directory, 'v1.db');
    const v1 = new Database(file);
    migrateSqlite(v1, sqliteMigrations.slice(0, 1));
    v1.close();
    const repositories = createSqliteRepositories({ filename: file });
    expect(repositories.database.prepare('SELECT max(version) AS v FROM ii_migrations').get()).toEqual({
      v: latestVersion(sqliteMigrations),
    });
    const image = makeImage({ id: 'img-old' });
    await repositories.images.insert(image);
    expect(await repositories.images.get('img-old')).toEqual(image);
    await repositories.close();
  });
});
