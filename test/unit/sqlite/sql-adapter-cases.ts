/**
 * Behavior the SQL adapters add on top of the conformance suite (exact round-trips at the
 * extremes of each column type, cursor checks, foreign keys, immutable fields). Shared by the
 * SQLite unit tests and the PostgreSQL integration tests.
 */
import assert from 'node:assert/strict';
import { isInstanceImagesError, type Repositories } from '../../../src';
import { makeImage, makeStorage, makeTask } from '../../../src/testing';

/** One adapter case. */
export interface SqlAdapterCase {
  name: string;
  run(repositories: Repositories): Promise<void>;
}

const hasCode = (code: string) => (error: unknown) => isInstanceImagesError(error) && error.code === code;

/** The cases. */
export const sqlAdapterCases: SqlAdapterCase[] = [
  {
    name: 'values at the extremes of each column type round-trip exactly',
    async run({ images, storages, tasks }) {
      const image = makeImage({
        name: 'Ünïcødé 😀 "quoted" \'single\' ; DROP TABLE ii_images; --',
        description: 'line 1\nline\t2',
        sizeBytes: Number.MAX_SAFE_INTEGER,
        virtualSizeBytes: 2 ** 40 + 1,
        createdAt: new Date(1_793_491_200_123),
        updatedAt: new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999)),
        availableAt: new Date(0),
        statusReason: { code: 'X', message: 'emoji 😀 and \\ backslash' },
        cloudInit: true,
      });
      await images.insert(image);
      assert.deepEqual(await images.get(image.id), image);
      const storage = makeStorage({
        config: { nested: { list: [1, 'two', null, { three: 3.5 }], empty: {} }, flag: false, big: 9007199254740991, unicode: 'ü😀' },
      });
      await storages.insert(storage);
      assert.deepEqual(await storages.get(storage.id), storage);
      const task = makeTask({
        progress: { step: 'copying', percent: 99, bytesDone: Number.MAX_SAFE_INTEGER - 1, bytesTotal: Number.MAX_SAFE_INTEGER },
        attempts: 2_000_000_000,
      });
      await tasks.insert(task);
      assert.deepEqual(await tasks.get(task.id), task);
    },
  },
  {
    name: 'a cursor of another list order is refused with VALIDATION_FAILED',
    async run({ images }) {
      for (let i = 0; i < 3; i++) await images.insert(makeImage({ name: `n${i}` }));
      const byName = await images.list({}, { limit: 1 }, { by: 'name' });
      assert.ok(byName.nextCursor);
      await assert.rejects(images.list({}, { cursor: byName.nextCursor, limit: 1 }), hasCode('VALIDATION_FAILED'));
      await assert.rejects(images.list({}, { cursor: 'not-a-cursor' }), hasCode('VALIDATION_FAILED'));
      await assert.rejects(images.list({}, { limit: 0 }), hasCode('VALIDATION_FAILED'));
    },
  },
  {
    name: 'binding a storage that does not exist fails with NOT_FOUND',
    async run({ storages }) {
      await assert.rejects(storages.bind('no-such-storage', 'hv-1', new Date()), hasCode('NOT_FOUND'));
      assert.deepEqual(await storages.listBindings(), []);
    },
  },
  {
    name: 'updates ignore immutable fields and undefined values',
    async run({ images, tasks }) {
      const image = makeImage({ accountId: 'owner' });
      await images.insert(image);
      const patch = {
        name: 'renamed',
        description: undefined,
        kind: 'stock',
        accountId: 'thief',
        createdAt: new Date(5),
        status: 'deleted',
        id: 'other',
      } as unknown as Parameters<typeof images.update>[1];
      const updated = await images.update(image.id, patch, new Date(1_000));
      assert.ok(updated);
      assert.equal(updated.name, 'renamed');
      assert.equal(updated.description, image.description);
      assert.equal(updated.kind, 'custom');
      assert.equal(updated.accountId, 'owner');
      assert.deepEqual(updated.createdAt, image.createdAt);
      assert.equal(updated.status, 'creating');
      assert.equal(updated.id, image.id);
      assert.deepEqual(updated.updatedAt, new Date(1_000));
      const task = makeTask();
      await tasks.insert(task);
      const moved = await tasks.transition(task.id, ['queued'], 'running', { startedAt: new Date(7), updatedAt: new Date(1) }, new Date(8));
      assert.deepEqual(moved?.updatedAt, new Date(8));
      assert.deepEqual(moved?.startedAt, new Date(7));
      assert.equal(moved?.status, 'running');
    },
  },
  {
    name: 'an empty status list matches nothing; a cap that is not finite means no cap',
    async run({ images, tasks }) {
      await images.insert(makeImage());
      await tasks.insert(makeTask());
      assert.deepEqual((await images.list({ statuses: [] })).items, []);
      assert.deepEqual((await tasks.list({ statuses: [] })).items, []);
      assert.equal(await images.transition('x', [], 'error', {}, new Date()), null);
      assert.equal(
        await images.insertIfUnderLimit(makeImage({ accountId: 'inf' }), { accountId: 'inf', max: Number.POSITIVE_INFINITY }),
        true,
      );
    },
  },
];
