import pg from 'pg';
import { afterAll, describe, it } from 'vitest';
import { createPostgresRepositories, type PostgresRepositories } from '../../../adapters/postgres';
import { testRepositories, testRepositoriesAcrossProcesses } from '../../../src/testing';
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

// Four processes, each with its own pool, on one schema: the cap (an advisory transaction lock)
// and the compare-and-set transitions hold across servers, and nothing throws.
testRepositoriesAcrossProcesses(
  { describe: url ? describe : describe.skip, it },
  {
    name: 'postgres (4 processes, one schema)',
    childModule: new URL('./repositories.child.ts', import.meta.url),
    async setup() {
      if (!pool || !url) throw new Error('PostgreSQL is not reachable');
      const schema = randomSchemaName();
      return { args: { connectionString: url, schema }, repositories: await createPostgresRepositories({ pool, schema }) };
    },
    async teardown({ repositories }) {
      const postgres = repositories as PostgresRepositories;
      await postgres.close();
      await dropSchema(postgres.pool, postgres.schema);
    },
  },
);
