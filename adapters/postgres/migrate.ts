/**
 * Applies the PostgreSQL migrations in one transaction that first takes an advisory lock for the
 * schema, so two processes starting at once apply them once (the second waits, then finds
 * nothing to do). Creates the schema when missing. Safe to re-run.
 * @module
 */
import type { Pool, PoolClient } from 'pg';
import { InstanceImagesError } from '../../src/errors';
import { latestVersion, MIGRATIONS_TABLE, pendingMigrations, type Migration } from '../sql-common/migrations';
import { advisoryLock, quoteIdentifier } from './dialect';
import { withTransaction } from './executor';
import { postgresMigrations } from './migrations';

/** What {@link migratePostgres} did. */
export interface PostgresMigrationResult {
  /** The schema migrated. */
  schema: string;
  /** Versions applied by this call (empty when the schema was current). */
  applied: number[];
  /** The schema version now. */
  version: number;
}

async function appliedVersions(client: Pool | PoolClient, schema: string): Promise<number[] | null> {
  const exists = await client.query('SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = $2', [
    schema,
    MIGRATIONS_TABLE,
  ]);
  if (exists.rowCount === 0) return null;
  const rows = await client.query(`SELECT version FROM ${quoteIdentifier(schema)}.${MIGRATIONS_TABLE} ORDER BY version`);
  return rows.rows.map((row: { version: number }) => Number(row.version));
}

/**
 * The connection's current schema (the first existing schema of its search path).
 * @throws INVALID_STATE when the search path names no existing schema.
 */
export async function currentSchema(pool: Pool): Promise<string> {
  const result = await pool.query('SELECT current_schema() AS schema');
  const schema = (result.rows[0] as { schema: string | null } | undefined)?.schema;
  if (!schema)
    throw new InstanceImagesError('INVALID_STATE', 'The PostgreSQL search path names no existing schema; pass the schema option');
  return schema;
}

/**
 * Brings the instance-images tables in `schema` to the latest version.
 * @throws INVALID_STATE when the schema was migrated by a newer release.
 */
export async function migratePostgres(
  pool: Pool,
  options: { schema: string },
  migrations: readonly Migration[] = postgresMigrations,
): Promise<PostgresMigrationResult> {
  const { schema } = options;
  const applied = await withTransaction(pool, async (client) => {
    const lock = advisoryLock('migrations', schema, 'migrations');
    await client.query(lock.sql, lock.params);
    const namespace = await client.query('SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1', [schema]);
    if (namespace.rowCount === 0) await client.query(`CREATE SCHEMA ${quoteIdentifier(schema)}`);
    await client.query(`SET LOCAL search_path TO ${quoteIdentifier(schema)}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (version integer NOT NULL PRIMARY KEY, name text NOT NULL, applied_at timestamptz(3) NOT NULL DEFAULT now())`,
    );
    const pending = pendingMigrations(migrations, (await appliedVersions(client, schema)) ?? [], 'PostgreSQL');
    for (const migration of pending) {
      for (const statement of migration.statements) await client.query(statement);
      await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
    }
    return pending.map((migration) => migration.version);
  });
  return { schema, applied, version: latestVersion(migrations) };
}

/**
 * Checks that `schema` holds the latest instance-images tables, for hosts that migrate separately.
 * @throws INVALID_STATE when it does not.
 */
export async function assertPostgresSchemaCurrent(
  pool: Pool,
  options: { schema: string },
  migrations: readonly Migration[] = postgresMigrations,
): Promise<void> {
  const pending = pendingMigrations(migrations, (await appliedVersions(pool, options.schema)) ?? [], 'PostgreSQL');
  if (pending.length > 0) {
    throw new InstanceImagesError(
      'INVALID_STATE',
      `The PostgreSQL schema ${JSON.stringify(options.schema)} is missing instance-images versions ${pending.map((m) => m.version).join(', ')}; run migratePostgres() or pass migrate: true`,
      {
        details: { schema: options.schema, missingVersions: pending.map((m) => m.version) },
      },
    );
  }
}
