/**
 * Runs statements on a `pg` pool: single statements on any pooled connection, transactions on
 * one checked-out connection (READ COMMITTED; the statements themselves carry the locking).
 * @module
 */
import type { Pool, PoolClient } from 'pg';
import type { SqlExecutor, SqlRow, SqlStatement, SqlStep } from '../sql-common/dialect';

/**
 * Runs `work` inside BEGIN/COMMIT on one connection; rolls back on failure and discards a
 * connection whose rollback failed.
 */
export async function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError instanceof Error ? rollbackError : new Error('ROLLBACK failed');
    }
    throw error;
  } finally {
    client.release(broken);
  }
}

/** An {@link SqlExecutor} over a `pg` pool. */
export function createPostgresExecutor(pool: Pool): SqlExecutor {
  return {
    async query({ sql, params }: SqlStatement): Promise<SqlRow[]> {
      return (await pool.query(sql, params)).rows as SqlRow[];
    },
    async transaction(statements: readonly (SqlStatement | SqlStep)[]): Promise<SqlRow[][]> {
      return withTransaction(pool, async (client) => {
        const results: SqlRow[][] = [];
        for (const item of statements) {
          const statement = typeof item === 'function' ? item(results) : item;
          results.push(statement ? ((await client.query(statement.sql, statement.params)).rows as SqlRow[]) : []);
        }
        return results;
      });
    },
  };
}
