/**
 * Options of {@link createSqliteRepositories}; importable without loading better-sqlite3.
 * @module
 */
import type Database from 'better-sqlite3';
import { z } from 'zod';

const isDatabase = (value: unknown): value is Database.Database =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { prepare?: unknown }).prepare === 'function' &&
  typeof (value as { transaction?: unknown }).transaction === 'function';

/** Options of {@link createSqliteRepositories}: a file to open, or the host's own better-sqlite3 connection. */
export interface SqliteRepositoriesOptions {
  /** The database file to open (created when missing), or `:memory:`. Opened in WAL mode with foreign keys on. */
  filename?: string;
  /**
   * The host's open better-sqlite3 connection. Our `ii_` tables are created in it; its pragmas
   * (journal mode, foreign keys, busy timeout) are left as the host set them, and `close()` does not close it.
   */
  database?: Database.Database;
  /** How long a write waits for another connection's lock, in ms (files we open). @default 5000 */
  busyTimeoutMs?: number;
  /** Run the migrations on start; when false, the schema must already be current. @default true */
  migrate?: boolean;
}

/** {@link SqliteRepositoriesOptions} after validation, with defaults applied. */
export interface ParsedSqliteRepositoriesOptions extends SqliteRepositoriesOptions {
  /** How long a write waits for another connection's lock, in ms. */
  busyTimeoutMs: number;
  /** Whether to run the migrations on start. */
  migrate: boolean;
}

/** Validates {@link SqliteRepositoriesOptions}. */
export const SqliteRepositoriesOptionsSchema: z.ZodType<ParsedSqliteRepositoriesOptions, SqliteRepositoriesOptions> = z
  .object({
    filename: z.string().min(1, 'must not be empty').optional(),
    database: z.custom<Database.Database>(isDatabase, 'must be a better-sqlite3 Database').optional(),
    busyTimeoutMs: z.number().int().min(0).max(600_000).default(5_000),
    migrate: z.boolean().default(true),
  })
  .superRefine((options, context) => {
    if ((options.filename === undefined) === (options.database === undefined)) {
      context.addIssue({ code: 'custom', path: ['filename'], message: 'give exactly one of filename or database' });
    }
  });
