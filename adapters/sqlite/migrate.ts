/**
 * Applies the SQLite migrations: one BEGIN IMMEDIATE transaction that creates `ii_migrations`,
 * reads the applied versions and applies the missing ones. Safe to re-run, and safe when several
 * processes start at once (the second waits for the write lock, then finds nothing to do).
 * @module
 */
import type Database from 'better-sqlite3';
import { InstanceImagesError } from '../../src/errors';
import { latestVersion, MIGRATIONS_TABLE, pendingMigrations, type Migration } from '../sql-common/migrations';
import { sqliteMigrations } from './migrations';

/** What {@link migrateSqlite} did. */
export interface SqliteMigrationResult {
  /** Versions applied by this call (empty when the schema was current). */
  applied: number[];
  /** The schema version now. */
  version: number;
}

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`;

function appliedVersions(db: Database.Database): number[] {
  return (db.prepare(`SELECT version FROM ${MIGRATIONS_TABLE} ORDER BY version`).all() as { version: number }[]).map((row) => row.version);
}

/**
 * Brings the instance-images tables in `db` to the latest version.
 * @throws INVALID_STATE when the database was migrated by a newer release.
 */
export function migrateSqlite(db: Database.Database, migrations: readonly Migration[] = sqliteMigrations): SqliteMigrationResult {
  const migrate = db.transaction((): number[] => {
    db.exec(CREATE_MIGRATIONS_TABLE);
    const pending = pendingMigrations(migrations, appliedVersions(db), 'SQLite');
    const record = db.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (version, name, applied_at) VALUES (?, ?, ?)`);
    for (const migration of pending) {
      for (const statement of migration.statements) db.exec(statement);
      record.run(migration.version, migration.name, Date.now());
    }
    return pending.map((migration) => migration.version);
  });
  const applied = migrate.immediate();
  return { applied, version: latestVersion(migrations) };
}

/**
 * Checks that `db` holds the latest schema, for hosts that run migrations separately.
 * @throws INVALID_STATE when it does not.
 */
export function assertSqliteSchemaCurrent(db: Database.Database, migrations: readonly Migration[] = sqliteMigrations): void {
  const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(MIGRATIONS_TABLE) !== undefined;
  const versions = exists ? appliedVersions(db) : [];
  const pending = pendingMigrations(migrations, versions, 'SQLite');
  if (pending.length > 0) {
    throw new InstanceImagesError(
      'INVALID_STATE',
      `The SQLite schema of instance-images is missing versions ${pending.map((m) => m.version).join(', ')}; run migrateSqlite() or pass migrate: true`,
      {
        details: { missingVersions: pending.map((m) => m.version) },
      },
    );
  }
}
