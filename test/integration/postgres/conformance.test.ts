import pg from 'pg';
import { afterAll, describe, it } from 'vitest';
import { createPostgresRepositories, type PostgresRepositories } from '../../../adapters/postgres';
import { testRepositories } from '../../../src/testing';
import { dropSchema, randomSchemaName, reachablePostgres } from '../../support/postgres';

const url = await reachablePostgres();
// Several connections, so the concurrency cases race across connections, not inside one.
const pool = url ? new pg.Pool({ connectionString: url, max: 8 }) : null;
afterAll(async () => {
  await pool?.end();
});

testRepositories(
  { describe: url ? describe : describe.skip, it },
  {
    name: 'postgres (fresh schema per case, 8 connections)',
    async create() {
      if (!pool) throw new Error('PostgreSQL is not reachable');
      return createPostgresRepositories({ pool, schema: randomSchemaName() });
    },
    async destroy(repositories) {
      const postgres = repositories as PostgresRepositories;
      await postgres.close();
      await dropSchema(postgres.pool, postgres.schema);
    },
  },
);
