import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresRepositories, type PostgresRepositories } from '../../../adapters/postgres';
import {
  runRepositoriesAcrossProcesses,
  testRepositories,
  testRepositoriesAcrossProcesses,
  type ProcessSuiteOptions,
} from '../../../src/testing';
import { openPlantedPostgresRepositories } from './planted-repositories';
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

// The same case fails a planted adapter whose cap is a count and then an insert (no lock).
(url ? describe : describe.skip)('the multi-process case catches a broken PostgreSQL adapter', () => {
  it('the planted read-then-insert cap leaves more images than the cap across processes', async () => {
    const options: ProcessSuiteOptions = {
      name: 'postgres planted read-then-insert',
      childModule: new URL('./repositories.child.ts', import.meta.url),
      async setup() {
        if (!pool || !url) throw new Error('PostgreSQL is not reachable');
        const schema = randomSchemaName();
        return {
          args: { connectionString: url, schema, planted: true },
          repositories: await openPlantedPostgresRepositories({ pool, schema }),
        };
      },
      async teardown({ repositories }) {
        const postgres = repositories as PostgresRepositories;
        await postgres.close();
        await dropSchema(postgres.pool, postgres.schema);
      },
    };
    const result = await runRepositoriesAcrossProcesses(options);
    console.info(
      `planted postgres: ${result.rounds} rounds, ${result.violations.length} violations, e.g. ${result.violations.slice(0, 2).join(' | ')}`,
    );
    expect(
      result.violations.some((v) => /racing insertIfUnderLimit against a cap of 2 left [3-9] images/.test(v)),
      result.violations.join('\n'),
    ).toBe(true);
  }, 180_000);
});
