/**
 * Finds the real PostgreSQL the integration tests run against (DATABASE_URL, else the env file
 * written by scripts/start-services.sh, else the private cluster's default address), and makes
 * throwaway schemas in it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import pg from 'pg';

/** The env file that scripts/start-services.sh writes. */
export const SERVICES_ENV_FILE = '/var/tmp/instance-images-test/services/env.sh';
/** The private test cluster's address when nothing else says otherwise. */
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:55432/test';

/** The configured database URL. */
export function databaseUrl(): string {
  if (process.env['DATABASE_URL']) return process.env['DATABASE_URL'];
  if (existsSync(SERVICES_ENV_FILE)) {
    const match = /DATABASE_URL=("?)([^"\s]+)\1/.exec(readFileSync(SERVICES_ENV_FILE, 'utf8'));
    if (match?.[2]) return match[2];
  }
  return DEFAULT_DATABASE_URL;
}

/** The URL with any password masked, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

/**
 * The database URL when PostgreSQL answers there; `null` (tests skip, with the reason printed)
 * when it does not. With CI set, an unreachable server throws: CI must never skip this suite.
 */
export async function reachablePostgres(): Promise<string | null> {
  const url = databaseUrl();
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return url;
  } catch (error) {
    const reason = `PostgreSQL is not reachable at ${redactUrl(url)} (${error instanceof Error ? error.message : String(error)}); start it with scripts/start-services.sh`;
    if (process.env['CI']) throw new Error(reason, { cause: error });
    console.warn(`skipping the PostgreSQL suite: ${reason}`);
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh, unused schema name. */
export function randomSchemaName(): string {
  return `ii_test_${randomBytes(6).toString('hex')}`;
}

/** Drops a test schema and everything in it. */
export async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}
