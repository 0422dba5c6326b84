/**
 * `instance-images/adapters/postgres`: the repository ports on PostgreSQL through `pg` 8 (an
 * optional peer dependency), with versioned migrations that run on start under an advisory lock.
 * @module
 */
export { createPostgresRepositories, type PostgresRepositories } from './repositories';
export {
  PostgresRepositoriesOptionsSchema,
  PostgresSchemaNameSchema,
  type PostgresRepositoriesOptions,
  type ParsedPostgresRepositoriesOptions,
} from './options';
export { migratePostgres, assertPostgresSchemaCurrent, type PostgresMigrationResult } from './migrate';
export { postgresMigrations } from './migrations';
export type { Migration } from '../sql-common/migrations';
