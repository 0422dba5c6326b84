/**
 * The shape of versioned migrations shared by the SQL adapters: an ordered list of versions,
 * each a list of statements applied in one transaction and recorded in `ii_migrations`.
 * @module
 */
import { InstanceImagesError } from '../../src/errors';

/** One schema version: statements that take the schema from the previous version to this one. */
export interface Migration {
  /** The version number: 1, 2, 3... with no gaps. */
  readonly version: number;
  /** A short description, stored with the version. */
  readonly name: string;
  /** The statements, applied in order. */
  readonly statements: readonly string[];
}

/** The table recording applied versions (unqualified). */
export const MIGRATIONS_TABLE = 'ii_migrations';

/** The latest version of a migration list. */
export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.reduce((max, migration) => Math.max(max, migration.version), 0);
}

/**
 * The migrations still to apply to a database whose applied versions are `applied`, in order.
 * @throws INVALID_STATE when the database is newer than this code (a downgrade), so an older
 * release never writes to a schema it does not know.
 */
export function pendingMigrations(migrations: readonly Migration[], applied: readonly number[], database: string): Migration[] {
  const latest = latestVersion(migrations);
  const newest = applied.reduce((max, version) => Math.max(max, version), 0);
  if (newest > latest) {
    throw new InstanceImagesError(
      'INVALID_STATE',
      `The ${database} schema of instance-images is at version ${newest}, newer than this release supports (${latest}); upgrade instance-images`,
      { details: { schemaVersion: newest, supportedVersion: latest } },
    );
  }
  const done = new Set(applied);
  return [...migrations].sort((a, b) => a.version - b.version).filter((migration) => !done.has(migration.version));
}

/** Checks a migration list is numbered 1..n without gaps or duplicates (a programming error otherwise). */
export function assertMigrationsOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new InstanceImagesError('INVALID_STATE', `Migration ${migration.name} has version ${migration.version}; expected ${index + 1}`);
    }
  });
}
