/**
 * `instance-images/adapters/sqlite`: the repository ports on SQLite through better-sqlite3 12
 * (an optional peer dependency), with versioned migrations that run on start.
 * @module
 */
export { createSqliteRepositories, type SqliteRepositories } from './repositories';
export { SqliteRepositoriesOptionsSchema, type SqliteRepositoriesOptions, type ParsedSqliteRepositoriesOptions } from './options';
export { migrateSqlite, assertSqliteSchemaCurrent, type SqliteMigrationResult } from './migrate';
export { sqliteMigrations } from './migrations';
export type { Migration } from '../sql-common/migrations';
