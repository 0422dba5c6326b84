/**
 * Runs statements on a better-sqlite3 connection. better-sqlite3 is synchronous: each call below
 * finishes before any other JavaScript runs, so one repository method (one call) is one
 * transaction, and concurrent async callers never interleave inside it.
 * @module
 */
import type Database from 'better-sqlite3';
import type { SqlExecutor, SqlRow, SqlStatement, SqlStep } from '../sql-common/dialect';

/** Prepared statements kept per connection (filters produce a bounded set of SQL texts). */
const STATEMENT_CACHE_SIZE = 256;

/** An {@link SqlExecutor} over one better-sqlite3 connection. */
export function createSqliteExecutor(db: Database.Database): SqlExecutor {
  const cache = new Map<string, Database.Statement>();

  const prepare = (sql: string): Database.Statement => {
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      if (cache.size >= STATEMENT_CACHE_SIZE) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      cache.set(sql, statement);
    }
    return statement;
  };

  const run = ({ sql, params }: SqlStatement): SqlRow[] => {
    const statement = prepare(sql);
    if (statement.reader) return statement.all(...params) as SqlRow[];
    statement.run(...params);
    return [];
  };

  // BEGIN IMMEDIATE takes the write lock up front (waiting up to busy_timeout for other
  // connections), so a read-then-write inside it cannot be overtaken by another writer.
  const inTransaction = db.transaction((statements: readonly (SqlStatement | SqlStep)[]) => {
    const results: SqlRow[][] = [];
    for (const item of statements) {
      const statement = typeof item === 'function' ? item(results) : item;
      results.push(statement ? run(statement) : []);
    }
    return results;
  });

  return {
    async query(statement) {
      return run(statement);
    },
    async transaction(statements) {
      return inTransaction.immediate(statements);
    },
  };
}
