import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresRepositories, migratePostgres, postgresMigrations, type PostgresRepositories } from '../../../adapters/postgres';
import { latestVersion } from '../../../adapters/sql-common/migrations';
import { isInstanceImagesError } from '../../../src';
import { makeImage, makeStorage, makeTask } from '../../../src/testing';
import { dropSchema, randomSchemaName, reachablePostgres } from '../../support/postgres';
import { sqlAdapterCases } from '../../unit/sqlite/sql-adapter-cases';

const url = await reachablePostgres();
const suite = url ? describe : describe.skip;
const pools: pg.Pool[] = [];
const schemas = new Set<string>();

/** A pool of several connections, ended after the file. */
function newPool(config: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: url ?? undefined, max: 6, ...config });
  pools.push(pool);
  return pool;
}

/** A schema name that is dropped after the file. */
function newSchema(): string {
  const schema = randomSchemaName();
  schemas.add(schema);
  return schema;
}

afterAll(async () => {
  if (url) {
    const cleaner = new pg.Pool({ connectionString: url, max: 1 });
    for (const schema of schemas) await dropSchema(cleaner, schema);
    await cleaner.end();
  }
  await Promise.all(pools.map((pool) => pool.end()));
});

async function rejectsCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    expect(isInstanceImagesError(error) ? error.code : String(error)).toBe(code);
    return error;
  }
  throw new Error(`expected ${code}`);
}

suite('postgres adapter behavior', () => {
  for (const testCase of sqlAdapterCases) {
    it(testCase.name, async () => {
      const repositories = await createPostgresRepositories({ pool: newPool(), schema: newSchema() });
      await testCase.run(repositories);
    });
  }

  it('decodes rows the same when the host pool has its own type parsers', async () => {
    // every value arrives as the raw text PostgreSQL sent
    const raw = newPool({ types: { getTypeParser: () => (value: string) => value } });
    const repositories = await createPostgresRepositories({ pool: raw, schema: newSchema() });
    const image = makeImage({
      sizeBytes: 2 ** 40,
      cloudInit: true,
      statusReason: { code: 'A', message: 'b' },
      createdAt: new Date(1_793_491_200_123),
    });
    await repositories.images.insert(image);
    expect(await repositories.images.get(image.id)).toEqual(image);
    const task = makeTask({ heartbeatAt: new Date(5), progress: { step: 's', percent: 50, bytesDone: 1, bytesTotal: 2 } });
    await repositories.tasks.insert(task);
    expect(await repositories.tasks.get(task.id)).toEqual(task);
    expect(await repositories.images.countActive(image.accountId ?? '')).toBe(1);
  });
});

suite('postgres migrations', () => {
  it('re-running the migrations changes nothing and keeps the data', async () => {
    const pool = newPool();
    const schema = newSchema();
    const first = await createPostgresRepositories({ pool, schema });
    const storage = makeStorage();
    await first.storages.insert(storage);
    expect(await migratePostgres(pool, { schema })).toEqual({ schema, applied: [], version: latestVersion(postgresMigrations) });
    const second = await createPostgresRepositories({ pool, schema });
    expect(await second.storages.get(storage.id)).toEqual(storage);
    const versions = await pool.query(`SELECT version FROM "${schema}".ii_migrations ORDER BY version`);
    expect(versions.rows.map((row: { version: number }) => row.version)).toEqual(postgresMigrations.map((m) => m.version));
  });

  it('two pools migrating a fresh schema at once apply each version once', async () => {
    const schema = newSchema();
    const results = await Promise.all([
      migratePostgres(newPool(), { schema }),
      migratePostgres(newPool(), { schema }),
      migratePostgres(newPool(), { schema }),
    ]);
    expect(results.map((r) => r.applied).sort((a, b) => b.length - a.length)).toEqual([postgresMigrations.map((m) => m.version), [], []]);
  });

  it('refuses a schema migrated by a newer release, and a missing schema when migrate is false', async () => {
    const pool = newPool();
    const schema = newSchema();
    await createPostgresRepositories({ pool, schema });
    await pool.query(`INSERT INTO "${schema}".ii_migrations (version, name) VALUES (99, 'from the future')`);
    await rejectsCode(createPostgresRepositories({ pool, schema }), 'INVALID_STATE');
    await rejectsCode(createPostgresRepositories({ pool, schema: newSchema(), migrate: false }), 'INVALID_STATE');
  });

  it("defaults to the connection's current schema", async () => {
    const schema = newSchema();
    const setup = newPool();
    await setup.query(`CREATE SCHEMA "${schema}"`);
    const repositories = await createPostgresRepositories({ pool: newPool({ options: `-c search_path=${schema}` }) });
    expect(repositories.schema).toBe(schema);
    await repositories.images.insert(makeImage());
    expect((await setup.query(`SELECT count(*)::int AS n FROM "${schema}".ii_images`)).rows[0]).toEqual({ n: 1 });
  });
});

suite('postgres concurrency across pools', () => {
  it('two repository instances on separate pools hold the image cap', async () => {
    const schema = newSchema();
    const a = await createPostgresRepositories({ pool: newPool(), schema });
    const b = await createPostgresRepositories({ pool: newPool(), schema });
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).images.insertIfUnderLimit(makeImage({ accountId: 'race' }), { accountId: 'race', max: 7 }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(7);
    expect(await a.images.countActive('race')).toBe(7);
  });

  it('two repository instances on separate pools: exactly one transition wins', async () => {
    const schema = newSchema();
    const a = await createPostgresRepositories({ pool: newPool(), schema });
    const b = await createPostgresRepositories({ pool: newPool(), schema });
    const images = Array.from({ length: 15 }, () => makeImage());
    for (const image of images) await a.images.insert(image);
    const outcomes = await Promise.all(
      images.map(async (image) => {
        const [x, y] = await Promise.all([
          a.images.transition(image.id, ['creating'], 'available', { description: 'a' }, new Date()),
          b.images.transition(image.id, ['creating'], 'error', { description: 'b' }, new Date()),
        ]);
        return [x, y].filter((r) => r !== null).length;
      }),
    );
    expect(outcomes).toEqual(images.map(() => 1));
  });
});

suite('postgres options', () => {
  it('opens and ends its own pool from a connection string', async () => {
    const repositories: PostgresRepositories = await createPostgresRepositories({
      connectionString: url ?? '',
      schema: newSchema(),
      maxConnections: 3,
    });
    await repositories.tasks.insert(makeTask());
    await repositories.close();
    await repositories.close();
    expect((repositories.pool as pg.Pool & { ended: boolean }).ended).toBe(true);
  });

  it("leaves the host's pool open on close", async () => {
    const pool = newPool();
    const repositories = await createPostgresRepositories({ pool, schema: newSchema() });
    await repositories.close();
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('validates options and never echoes a password', async () => {
    await rejectsCode(createPostgresRepositories({}), 'VALIDATION_FAILED');
    await rejectsCode(createPostgresRepositories({ pool: newPool(), schema: 'Bad-Name' }), 'VALIDATION_FAILED');
    await rejectsCode(createPostgresRepositories({ pool: newPool(), connectionString: url ?? '' }), 'VALIDATION_FAILED');
    let failure: unknown;
    try {
      await createPostgresRepositories({ connectionString: 'postgres://someone:supersecret-password@127.0.0.1:1/none' });
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(Error);
    expect(String((failure as Error).message)).not.toContain('supersecret');
    expect(JSON.stringify(failure)).not.toContain('supersecret');
  });
});
