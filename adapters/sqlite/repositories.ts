/**
 * The SQLite repositories factory.
 * @module
 */
import Database from 'better-sqlite3';
import type { Repositories } from '../../src/ports/repositories';
import { parseOrThrow } from '../../src/util/validate';
import { createSqlRepositories } from '../sql-common/repositories';
import { sqliteDialect } from './dialect';
import { createSqliteExecutor } from './executor';
import { assertSqliteSchemaCurrent, migrateSqlite } from './migrate';
import { SqliteRepositoriesOptionsSchema, type SqliteRepositoriesOptions } from './options';

/** The SQLite repositories and their connection. */
export interface SqliteRepositories extends Repositories {
  /** The better-sqlite3 connection (ours, or the one the host passed). */
  readonly database: Database.Database;
  /** Closes the connection when we opened it; a host's own connection stays open. */
  close(): Promise<void>;
}

/**
 * Creates every repository on SQLite (better-sqlite3): opens the file (WAL, foreign keys on,
 * a busy timeout) or uses the host's connection, runs the migrations, and returns the
 * repositories. Each repository method runs as one synchronous statement or transaction, so the
 * atomic operations hold for any number of concurrent callers and for other processes using the
 * same file.
 *
 * ```ts
 * const repositories = createSqliteRepositories({ filename: '/var/lib/panel/images.db' });
 * ```
 * @throws VALIDATION_FAILED for invalid options; INVALID_STATE when the file was migrated by a newer release.
 */
export function createSqliteRepositories(options: SqliteRepositoriesOptions): SqliteRepositories {
  const { filename, database, busyTimeoutMs, migrate } = parseOrThrow(
    SqliteRepositoriesOptionsSchema,
    options,
    'The SQLite repository options',
  );
  const owned = database === undefined;
  const db = database ?? new Database(filename, { timeout: busyTimeoutMs });
  try {
    if (owned) {
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    }
    if (migrate) migrateSqlite(db);
    else assertSqliteSchemaCurrent(db);
  } catch (error) {
    if (owned) db.close();
    throw error;
  }
  return {
    ...createSqlRepositories(sqliteDialect, createSqliteExecutor(db)),
    database: db,
    async close() {
      if (owned && db.open) db.close();
    },
  };
}
