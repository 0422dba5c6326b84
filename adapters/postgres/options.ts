/**
 * Options of {@link createPostgresRepositories}; importable without loading `pg`.
 * @module
 */
import type { Pool } from 'pg';
import { z } from 'zod';

const isPool = (value: unknown): value is Pool =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { query?: unknown }).query === 'function' &&
  typeof (value as { connect?: unknown }).connect === 'function';

/** A schema name we create and qualify tables with: lowercase, unquoted-identifier safe. */
export const PostgresSchemaNameSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be 1–63 lowercase letters, digits or underscores, not starting with a digit');

/** Options of {@link createPostgresRepositories}: the host's pool, or a connection string to open one. */
export interface PostgresRepositoriesOptions {
  /** The host's `pg` Pool. Its type parsers do not matter; `close()` does not end it. */
  pool?: Pool;
  /** A connection string to open our own pool with (never echoed in errors). */
  connectionString?: string;
  /** The schema holding the `ii_` tables, created when missing. @default the connection's current schema (usually `public`) */
  schema?: string;
  /** Connections of the pool we open from `connectionString`. @default 10 */
  maxConnections?: number;
  /** Run the migrations on start; when false, the schema must already be current. @default true */
  migrate?: boolean;
}

/** {@link PostgresRepositoriesOptions} after validation, with defaults applied. */
export interface ParsedPostgresRepositoriesOptions extends PostgresRepositoriesOptions {
  /** Connections of the pool we open. */
  maxConnections: number;
  /** Whether to run the migrations on start. */
  migrate: boolean;
}

/** Validates {@link PostgresRepositoriesOptions}. */
export const PostgresRepositoriesOptionsSchema: z.ZodType<ParsedPostgresRepositoriesOptions, PostgresRepositoriesOptions> = z
  .object({
    pool: z.custom<Pool>(isPool, 'must be a pg Pool').optional(),
    connectionString: z.string().min(1, 'must not be empty').optional(),
    schema: PostgresSchemaNameSchema.optional(),
    maxConnections: z.number().int().min(1).max(1000).default(10),
    migrate: z.boolean().default(true),
  })
  .superRefine((options, context) => {
    if ((options.pool === undefined) === (options.connectionString === undefined)) {
      context.addIssue({ code: 'custom', path: ['pool'], message: 'give exactly one of pool or connectionString' });
    }
  });
