/**
 * The PostgreSQL repositories factory.
 * @module
 */
import pg from 'pg';
import type { Pool } from 'pg';
import type { Repositories } from '../../src/ports/repositories';
import { parseOrThrow } from '../../src/util/validate';
import { createSqlRepositories } from '../sql-common/repositories';
import { postgresDialect } from './dialect';
import { createPostgresExecutor } from './executor';
import { assertPostgresSchemaCurrent, currentSchema, migratePostgres } from './migrate';
import { PostgresRepositoriesOptionsSchema, type PostgresRepositoriesOptions } from './options';

/** The PostgreSQL repositories, their pool and schema. */
export interface PostgresRepositories extends Repositories {
  /** The pool (ours, or the one the host passed). */
  readonly pool: Pool;
  /** The schema holding the `ii_` tables. */
  readonly schema: string;
  /** Ends the pool when we opened it; a host's own pool stays open. Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates every repository on PostgreSQL (`pg`): uses the host's pool or opens one, runs the
 * migrations (under an advisory lock), and returns the repositories. Single-row changes are one
 * `UPDATE ... RETURNING` (compare-and-set under READ COMMITTED); the capped insert runs in a
 * transaction holding a per-account advisory lock, so it holds across any number of connections
 * and processes.
 *
 * ```ts
 * const repositories = await createPostgresRepositories({ pool, schema: 'instance_images' });
 * ```
 * @throws VALIDATION_FAILED for invalid options; INVALID_STATE when the schema was migrated by a newer release.
 */
export async function createPostgresRepositories(options: PostgresRepositoriesOptions): Promise<PostgresRepositories> {
  const parsed = parseOrThrow(PostgresRepositoriesOptionsSchema, options, 'The PostgreSQL repository options');
  const owned = parsed.pool === undefined;
  const pool = parsed.pool ?? new pg.Pool({ connectionString: parsed.connectionString, max: parsed.maxConnections });
  // An idle connection that dies must not crash the host's process; the next query reports the problem.
  if (owned) pool.on('error', () => undefined);
  let ended = false;
  const end = async () => {
    if (owned && !ended) {
      ended = true;
      await pool.end();
    }
  };
  let schema: string;
  try {
    schema = parsed.schema ?? (await currentSchema(pool));
    if (parsed.migrate) await migratePostgres(pool, { schema });
    else await assertPostgresSchemaCurrent(pool, { schema });
  } catch (error) {
    await end();
    throw error;
  }
  return { ...createSqlRepositories(postgresDialect(schema), createPostgresExecutor(pool)), pool, schema, close: end };
}
