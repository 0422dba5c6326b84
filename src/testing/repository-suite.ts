/**
 * The repository conformance suite. Any implementation of {@link Repositories} (a host's own, or
 * our SQLite/PostgreSQL adapters) runs it in about three lines:
 *
 * ```ts
 * import { describe, it } from 'vitest';
 * import { testRepositories } from 'instance-images/testing';
 * testRepositories({ describe, it }, { name: 'my-db', create: () => createMyRepositories() });
 * ```
 *
 * It does not import a test framework: the caller passes its `describe`/`it`. Assertions use
 * `node:assert/strict`. Every case gets a fresh instance from `create`.
 * @module
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { isInstanceImagesError } from '../errors';
import type { Repositories } from '../ports/repositories';
import { roundTripCases } from './round-trip-cases';
import { imageMoveCases } from './image-move-cases';
import { outboxCases } from './outbox-cases';
import { outboxWriteCases } from './outbox-write-cases';
import { imageCapCases } from './image-cap-cases';
import { fixtureTime, makeImage, makeIso, makeMediaGroup, makeStorage, makeTask, makeUsageInterval } from './fixtures';

/** The test-framework functions the suite needs (vitest, jest, node:test all fit). */
export interface TestApi {
  /** Groups cases. */
  describe(name: string, body: () => void): void;
  /** Declares one case. */
  it(name: string, body: () => Promise<void>, timeout?: number): void;
}

/** Options of {@link testRepositories}. */
export interface RepositorySuiteOptions {
  /** Shown in the suite's name. */
  name: string;
  /** Creates a fresh, empty set of repositories for one case. */
  create(): Promise<Repositories> | Repositories;
  /** Disposes of what `create` made (drop schema, close pool). Default: `repos.close?.()`. */
  destroy?(repos: Repositories): Promise<void>;
  /** Per-case timeout in ms (default 30 000). */
  timeout?: number;
  /**
   * `false` leaves out the `outbox:` cases, for repositories without an outbox (their events are
   * then not crash-safe; docs/repositories.md, "Outbox"). @default true
   */
  outbox?: boolean;
}

/** One conformance case. */
export interface RepositoryCase {
  /** `area: behavior`. */
  name: string;
  /** Runs the case against fresh repositories; throws on a violation. */
  run(repos: Repositories): Promise<void>;
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isInstanceImagesError(error) && error.code === code);
}

async function collectAll<T>(fetch: (cursor: string | null) => Promise<{ items: T[]; nextCursor: string | null }>): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | null = null;
  for (let guard = 0; guard < 1000; guard++) {
    const page = await fetch(cursor);
    all.push(...page.items);
    if (page.nextCursor === null) return all;
    cursor = page.nextCursor;
  }
  throw new assert.AssertionError({ message: 'paging never ended' });
}

const t = fixtureTime;

/** Every case of the repository conformance suite. */
export const repositoryCases: readonly RepositoryCase[] = [
  // ---------- images ----------
  {
    name: 'images: insert then get returns an equal copy; missing id gives null',
    async run({ images }) {
      const image = makeImage({ statusReason: { code: 'X', message: 'y' }, description: 'multi\nline' });
      await images.insert(image);
      assert.deepEqual(await images.get(image.id), image);
      assert.equal(await images.get('no-such-id'), null);
    },
  },
  {
    name: 'images: returned records are copies',
    async run({ images }) {
      const image = makeImage();
      await images.insert(image);
      const first = await images.get(image.id);
      assert.ok(first);
      first.name = 'mutated';
      image.name = 'mutated-input';
      assert.equal((await images.get(image.id))?.name, 'web-server-v2');
    },
  },
  {
    name: 'images: inserting an existing id throws CONFLICT',
    async run({ images }) {
      const image = makeImage();
      await images.insert(image);
      await rejectsWithCode(images.insert({ ...image, name: 'other' }), 'CONFLICT');
      await rejectsWithCode(images.insertIfUnderLimit({ ...image }, { accountId: 'acct-1', max: 100 }), 'CONFLICT');
    },
  },
  {
    name: 'images: list filters and hides deleted images unless asked',
    async run({ images }) {
      const a = makeImage({ accountId: 'a', status: 'available', storageId: 's1', sourceInstanceId: 'vm-a', createdAt: t(1) });
      const b = makeImage({ accountId: 'a', status: 'deleted', storageId: 's1', createdAt: t(2) });
      const c = makeImage({ accountId: 'b', status: 'error', storageId: 's2', createdAt: t(3) });
      const stock = makeImage({
        kind: 'stock',
        accountId: null,
        status: 'available',
        mediaGroupId: 'mg',
        storageId: 's2',
        createdAt: t(4),
      });
      for (const image of [a, b, c, stock]) await images.insert(image);
      const ids = async (filter: Parameters<typeof images.list>[0]) => (await images.list(filter)).items.map((i) => i.id).sort();
      assert.deepEqual(await ids({ accountId: 'a' }), [a.id]);
      assert.deepEqual(await ids({ accountId: 'a', includeDeleted: true }), [a.id, b.id].sort());
      assert.deepEqual(await ids({ statuses: ['deleted'] }), [b.id]);
      assert.deepEqual(await ids({ kind: 'stock' }), [stock.id]);
      assert.deepEqual(await ids({ kind: 'custom' }), [a.id, c.id].sort());
      assert.deepEqual(await ids({ storageId: 's2' }), [c.id, stock.id].sort());
      assert.deepEqual(await ids({ sourceInstanceId: 'vm-a' }), [a.id]);
      assert.deepEqual(await ids({ mediaGroupId: 'mg' }), [stock.id]);
      assert.deepEqual(await ids({ statuses: ['available', 'error'] }), [a.id, c.id, stock.id].sort());
    },
  },
  {
    name: 'images: pages are complete, disjoint and sorted (newest first; by name)',
    async run({ images }) {
      const created = [];
      for (let i = 0; i < 7; i++) {
        // two images share a timestamp to exercise the id tie-breaker
        const image = makeImage({ name: `img-${String.fromCharCode(103 - i)}`, createdAt: t(i === 6 ? 5 : i) });
        created.push(image);
        await images.insert(image);
      }
      const byDate = await collectAll((cursor) => images.list({}, { cursor, limit: 2 }));
      assert.equal(byDate.length, 7);
      assert.equal(new Set(byDate.map((i) => i.id)).size, 7);
      for (let i = 1; i < byDate.length; i++) {
        const prev = byDate[i - 1]!;
        const cur = byDate[i]!;
        assert.ok(
          prev.createdAt.getTime() > cur.createdAt.getTime() || (prev.createdAt.getTime() === cur.createdAt.getTime() && prev.id > cur.id),
          'newest first, id desc on ties',
        );
      }
      const byName = await collectAll((cursor) => images.list({}, { cursor, limit: 3 }, { by: 'name' }));
      assert.deepEqual(
        byName.map((i) => i.name),
        created.map((i) => i.name).sort(),
      );
      const oldest = await images.list({}, { limit: 1 }, { by: 'createdAt', direction: 'asc' });
      assert.equal(oldest.items[0]?.id, created[0]?.id);
    },
  },
  {
    name: "images: countActive counts the account's custom images that are not deleted",
    async run({ images }) {
      await images.insert(makeImage({ accountId: 'a', status: 'creating' }));
      await images.insert(makeImage({ accountId: 'a', status: 'error' }));
      await images.insert(makeImage({ accountId: 'a', status: 'deleting' }));
      await images.insert(makeImage({ accountId: 'a', status: 'deleted' }));
      await images.insert(makeImage({ accountId: 'b', status: 'available' }));
      assert.equal(await images.countActive('a'), 3);
      assert.equal(await images.countActive('nobody'), 0);
    },
  },
  {
    name: 'images: insertIfUnderLimit inserts below the cap and refuses at it',
    async run({ images }) {
      assert.equal(await images.insertIfUnderLimit(makeImage({ accountId: 'a' }), { accountId: 'a', max: 2 }), true);
      await images.insert(makeImage({ accountId: 'a', status: 'deleted' }));
      await images.insert(makeImage({ accountId: 'other' }));
      assert.equal(await images.insertIfUnderLimit(makeImage({ accountId: 'a' }), { accountId: 'a', max: 2 }), true);
      const refused = makeImage({ accountId: 'a' });
      assert.equal(await images.insertIfUnderLimit(refused, { accountId: 'a', max: 2 }), false);
      assert.equal(await images.get(refused.id), null);
      assert.equal(await images.insertIfUnderLimit(makeImage({ accountId: 'z' }), { accountId: 'z', max: 0 }), false);
    },
  },
  {
    name: 'images: insertIfUnderLimit with an existing id throws CONFLICT, also when the cap is reached',
    async run({ images }) {
      const first = makeImage({ accountId: 'full' });
      assert.equal(await images.insertIfUnderLimit(first, { accountId: 'full', max: 1 }), true);
      // At the cap the duplicate is still a duplicate: CONFLICT, not `false` (the caller would report a full cap).
      await rejectsWithCode(images.insertIfUnderLimit({ ...first, name: 'again' }, { accountId: 'full', max: 1 }), 'CONFLICT');
      await rejectsWithCode(images.insertIfUnderLimit({ ...first, name: 'again' }, { accountId: 'full', max: 0 }), 'CONFLICT');
      // An existing id of another account, whose own cap is full, too.
      const other = makeImage({ accountId: 'other-full' });
      await images.insert(other);
      await rejectsWithCode(images.insertIfUnderLimit({ ...other, accountId: 'full' }, { accountId: 'full', max: 1 }), 'CONFLICT');
      assert.deepEqual(await images.get(first.id), first);
      assert.equal(await images.countActive('full'), 1);
    },
  },
  {
    name: 'images: 50 parallel insertIfUnderLimit calls against a cap of 5 leave exactly 5',
    async run({ images }) {
      const results = await Promise.all(
        Array.from({ length: 50 }, () => images.insertIfUnderLimit(makeImage({ accountId: 'race' }), { accountId: 'race', max: 5 })),
      );
      assert.equal(results.filter(Boolean).length, 5);
      assert.equal(await images.countActive('race'), 5);
    },
  },
  {
    name: 'images: transition is a compare-and-set',
    async run({ images }) {
      const image = makeImage();
      await images.insert(image);
      const done = await images.transition(
        image.id,
        ['creating'],
        'available',
        { sizeBytes: 1234, sha256: 'a'.repeat(64), availableAt: t(10) },
        t(10),
      );
      assert.ok(done);
      assert.equal(done.status, 'available');
      assert.equal(done.sizeBytes, 1234);
      assert.deepEqual(done.updatedAt, t(10));
      assert.deepEqual(await images.get(image.id), done);
      assert.equal(await images.transition(image.id, ['creating'], 'error', {}, t(11)), null);
      assert.equal((await images.get(image.id))?.status, 'available');
      assert.equal(await images.transition('missing', ['creating'], 'error', {}, t(11)), null);
    },
  },
  {
    name: 'images: of two racing transitions exactly one wins (20 rounds)',
    async run({ images }) {
      for (let round = 0; round < 20; round++) {
        const image = makeImage();
        await images.insert(image);
        const [x, y] = await Promise.all([
          images.transition(image.id, ['creating'], 'available', { sizeBytes: 1 }, t(1)),
          images.transition(image.id, ['creating'], 'error', { statusReason: { code: 'CAPTURE_FAILED', message: 'x' } }, t(1)),
        ]);
        assert.equal([x, y].filter((r) => r !== null).length, 1, `round ${round}: exactly one transition wins`);
        const winner = (x ?? y)!;
        assert.equal((await images.get(image.id))?.status, winner.status);
      }
    },
  },
  {
    name: 'images: update patches fields and keeps the status',
    async run({ images }) {
      const image = makeImage({ status: 'available', sizeBytes: 10 });
      await images.insert(image);
      const updated = await images.update(image.id, { name: 'renamed', sizeBytes: 20 }, t(5));
      assert.equal(updated?.name, 'renamed');
      assert.equal(updated?.sizeBytes, 20);
      assert.equal(updated?.status, 'available');
      assert.deepEqual(updated?.updatedAt, t(5));
      assert.equal(await images.update('missing', { name: 'x' }, t(5)), null);
    },
  },
  // ---------- storages ----------
  {
    name: 'storages: insert, get, list by purpose, update, delete',
    async run({ storages }) {
      const a = makeStorage({ name: 'b-local', config: { path: '/srv/a', nested: { x: 1 } } });
      const b = makeStorage({ name: 'a-templates', purpose: 'templates', driver: 's3' });
      await storages.insert(a);
      await storages.insert(b);
      await rejectsWithCode(storages.insert(a), 'CONFLICT');
      assert.deepEqual(await storages.get(a.id), a);
      assert.equal(await storages.get('missing'), null);
      assert.deepEqual(
        (await storages.list()).map((s) => s.id),
        [b.id, a.id],
      );
      assert.deepEqual(
        (await storages.list({ purpose: 'templates' })).map((s) => s.id),
        [b.id],
      );
      const updated = await storages.update(a.id, { name: 'renamed', enabled: false }, t(3));
      assert.equal(updated?.name, 'renamed');
      assert.equal(updated?.enabled, false);
      assert.deepEqual(updated?.config, a.config);
      assert.equal(await storages.update('missing', { name: 'x' }, t(3)), null);
      assert.equal(await storages.delete(a.id), true);
      assert.equal(await storages.delete(a.id), false);
      assert.equal(await storages.get(a.id), null);
    },
  },
  {
    name: 'storages: bindings are idempotent, filterable and removed with the storage',
    async run({ storages }) {
      const s1 = makeStorage();
      const s2 = makeStorage();
      await storages.insert(s1);
      await storages.insert(s2);
      const first = await storages.bind(s1.id, 'hv-1', t(1));
      const again = await storages.bind(s1.id, 'hv-1', t(2));
      assert.deepEqual(again, first);
      await storages.bind(s1.id, 'hv-2', t(1));
      await storages.bind(s2.id, 'hv-1', t(1));
      assert.equal((await storages.listBindings()).length, 3);
      assert.deepEqual(
        (await storages.listBindings({ storageId: s1.id })).map((b) => b.hypervisorId),
        ['hv-1', 'hv-2'],
      );
      assert.equal((await storages.listBindings({ hypervisorId: 'hv-1' })).length, 2);
      assert.equal(await storages.unbind(s1.id, 'hv-2'), true);
      assert.equal(await storages.unbind(s1.id, 'hv-2'), false);
      await storages.delete(s1.id);
      assert.deepEqual(
        (await storages.listBindings()).map((b) => b.storageId),
        [s2.id],
      );
    },
  },
  // ---------- media groups ----------
  {
    name: 'media groups: CRUD, ordered by order then name, visibility filter',
    async run({ mediaGroups }) {
      const windows = makeMediaGroup({ name: 'Windows', order: 2 });
      const linux = makeMediaGroup({ name: 'Linux', order: 1 });
      const bsd = makeMediaGroup({ name: 'BSD', order: 2, customerVisible: false });
      for (const g of [windows, linux, bsd]) await mediaGroups.insert(g);
      await rejectsWithCode(mediaGroups.insert(linux), 'CONFLICT');
      assert.deepEqual(await mediaGroups.get(linux.id), linux);
      assert.equal(await mediaGroups.get('missing'), null);
      assert.deepEqual(
        (await mediaGroups.list()).map((g) => g.name),
        ['Linux', 'BSD', 'Windows'],
      );
      assert.deepEqual(
        (await mediaGroups.list({ customerVisible: true })).map((g) => g.name),
        ['Linux', 'Windows'],
      );
      assert.equal((await mediaGroups.update(bsd.id, { customerVisible: true }, t(1)))?.customerVisible, true);
      assert.equal(await mediaGroups.update('missing', { name: 'x' }, t(1)), null);
      assert.equal(await mediaGroups.delete(bsd.id), true);
      assert.equal(await mediaGroups.delete(bsd.id), false);
    },
  },
  // ---------- ISOs ----------
  {
    name: 'isos: CRUD, filters and paging by name',
    async run({ isos }) {
      const names = ['d', 'a', 'c', 'b', 'e'];
      const created = [];
      for (const name of names) {
        const iso = makeIso({ name, customerVisible: name !== 'c', storageId: name === 'e' ? 'other' : 'templates-1' });
        created.push(iso);
        await isos.insert(iso);
      }
      await rejectsWithCode(isos.insert(created[0]!), 'CONFLICT');
      assert.deepEqual(await isos.get(created[0]!.id), created[0]);
      assert.equal(await isos.get('missing'), null);
      const all = await collectAll((cursor) => isos.list({}, { cursor, limit: 2 }));
      assert.deepEqual(
        all.map((i) => i.name),
        ['a', 'b', 'c', 'd', 'e'],
      );
      assert.deepEqual(
        (await isos.list({ customerVisible: true })).items.map((i) => i.name),
        ['a', 'b', 'd', 'e'],
      );
      assert.deepEqual(
        (await isos.list({ storageId: 'other' })).items.map((i) => i.name),
        ['e'],
      );
      assert.equal((await isos.list({ status: 'uploading' })).items.length, 0);
      assert.equal((await isos.update(created[0]!.id, { customerVisible: false }, t(1)))?.customerVisible, false);
      assert.equal(await isos.update('missing', { name: 'x' }, t(1)), null);
      assert.equal(await isos.delete(created[0]!.id), true);
      assert.equal(await isos.delete(created[0]!.id), false);
    },
  },
  // ---------- tasks ----------
  {
    name: 'tasks: insert, get, update progress, list newest first with filters and paging',
    async run({ tasks }) {
      const created = [];
      for (let i = 0; i < 5; i++) {
        const task = makeTask({
          accountId: i % 2 ? 'a' : 'b',
          type: i === 4 ? 'delete' : 'capture',
          status: i === 3 ? 'running' : 'queued',
          createdAt: t(i),
        });
        created.push(task);
        await tasks.insert(task);
      }
      await rejectsWithCode(tasks.insert(created[0]!), 'CONFLICT');
      assert.deepEqual(await tasks.get(created[0]!.id), created[0]);
      assert.equal(await tasks.get('missing'), null);
      const all = await collectAll((cursor) => tasks.list({}, { cursor, limit: 2 }));
      assert.deepEqual(
        all.map((x) => x.id),
        [...created].reverse().map((x) => x.id),
      );
      assert.equal((await tasks.list({ accountId: 'a' })).items.length, 2);
      assert.deepEqual(
        (await tasks.list({ statuses: ['running'] })).items.map((x) => x.id),
        [created[3]!.id],
      );
      assert.deepEqual(
        (await tasks.list({ type: 'delete' })).items.map((x) => x.id),
        [created[4]!.id],
      );
      assert.deepEqual(
        (await tasks.list({ subjectId: created[2]!.subjectId })).items.map((x) => x.id),
        [created[2]!.id],
      );
      const updated = await tasks.update(
        created[0]!.id,
        { progress: { step: 'copying', percent: 35, bytesDone: 5, bytesTotal: 10 }, heartbeatAt: t(9) },
        t(9),
      );
      assert.deepEqual(updated?.progress, { step: 'copying', percent: 35, bytesDone: 5, bytesTotal: 10 });
      assert.equal(updated?.status, 'queued');
      assert.equal(await tasks.update('missing', { attempts: 1 }, t(9)), null);
    },
  },
  {
    name: 'tasks: transition is a compare-and-set; of two racers exactly one wins',
    async run({ tasks }) {
      for (let round = 0; round < 20; round++) {
        const task = makeTask({ status: 'running' });
        await tasks.insert(task);
        const [x, y] = await Promise.all([
          tasks.transition(task.id, ['queued', 'running'], 'completed', { finishedAt: t(2) }, t(2)),
          tasks.transition(task.id, ['queued', 'running'], 'cancelled', { finishedAt: t(2) }, t(2)),
        ]);
        assert.equal([x, y].filter((r) => r !== null).length, 1, `round ${round}`);
      }
      assert.equal(await tasks.transition('missing', ['queued'], 'running', {}, t(1)), null);
    },
  },
  {
    name: 'tasks: listStale returns running tasks whose heartbeat lapsed',
    async run({ tasks }) {
      const stale = makeTask({ status: 'running', heartbeatAt: t(1) });
      const never = makeTask({ status: 'running', heartbeatAt: null });
      const fresh = makeTask({ status: 'running', heartbeatAt: t(10) });
      const queued = makeTask({ status: 'queued', heartbeatAt: null });
      const done = makeTask({ status: 'completed', heartbeatAt: t(1) });
      for (const task of [stale, never, fresh, queued, done]) await tasks.insert(task);
      assert.deepEqual((await tasks.listStale(t(5))).map((x) => x.id).sort(), [stale.id, never.id].sort());
    },
  },
  // ---------- usage ----------
  {
    name: 'usage: insert, get, filters, overlap and paging by start',
    async run({ usage }) {
      const a = makeUsageInterval({ accountId: 'a', imageId: 'i1', from: t(0), to: t(60) });
      const b = makeUsageInterval({ accountId: 'a', imageId: 'i2', from: t(30), to: null });
      const c = makeUsageInterval({ accountId: 'b', imageId: 'i3', locationId: 'loc-2', from: t(120), to: t(180) });
      for (const i of [c, a, b]) await usage.insert(i);
      await rejectsWithCode(usage.insert(a), 'CONFLICT');
      assert.deepEqual(await usage.get(a.id), a);
      assert.equal(await usage.get('missing'), null);
      const all = await collectAll((cursor) => usage.list({}, { cursor, limit: 2 }));
      assert.deepEqual(
        all.map((i) => i.id),
        [a.id, b.id, c.id],
      );
      const ids = async (filter: Parameters<typeof usage.list>[0]) => (await usage.list(filter)).items.map((i) => i.id);
      assert.deepEqual(await ids({ accountId: 'a' }), [a.id, b.id]);
      assert.deepEqual(await ids({ imageId: 'i3' }), [c.id]);
      assert.deepEqual(await ids({ locationId: 'loc-2' }), [c.id]);
      assert.deepEqual(await ids({ openOnly: true }), [b.id]);
      assert.deepEqual(await ids({ overlapping: { from: t(60), to: t(120) } }), [b.id]);
      assert.deepEqual(await ids({ overlapping: { from: t(59), to: t(121) } }), [a.id, b.id, c.id]);
      assert.deepEqual(await ids({ overlapping: { from: t(200), to: t(300) } }), [b.id]);
    },
  },
  {
    name: 'usage: close only closes an open interval, once, even when racing',
    async run({ usage }) {
      const open = makeUsageInterval({ from: t(0) });
      await usage.insert(open);
      const [x, y] = await Promise.all([usage.close(open.id, t(10)), usage.close(open.id, t(20))]);
      assert.equal([x, y].filter((r) => r !== null).length, 1);
      const closed = await usage.get(open.id);
      assert.ok(closed?.to);
      assert.equal(await usage.close(open.id, t(30)), null);
      assert.equal(await usage.close('missing', t(30)), null);
    },
  },
  // ---------- settings ----------
  {
    name: 'settings: location settings and account limits round-trip',
    async run({ settings }) {
      assert.equal(await settings.getLocation('loc-1'), null);
      const loc = {
        locationId: 'loc-1',
        imagesEnabled: true,
        urlImportEnabled: true,
        pricePerGbMonth: '0.0125',
        currency: 'EUR',
        defaultImageLimit: 5,
        updatedAt: t(1),
      };
      await settings.putLocation(loc);
      await settings.putLocation({ ...loc, locationId: 'loc-0', defaultImageLimit: null });
      assert.deepEqual(await settings.getLocation('loc-1'), loc);
      await settings.putLocation({ ...loc, imagesEnabled: false, updatedAt: t(2) });
      assert.equal((await settings.getLocation('loc-1'))?.imagesEnabled, false);
      assert.deepEqual(
        (await settings.listLocations()).map((l) => l.locationId),
        ['loc-0', 'loc-1'],
      );
      assert.equal(await settings.getAccountLimit('a'), null);
      await settings.putAccountLimit('a', { accountId: 'a', imageLimit: 7, updatedAt: t(1) });
      assert.deepEqual(await settings.getAccountLimit('a'), { accountId: 'a', imageLimit: 7, updatedAt: t(1) });
      await settings.putAccountLimit('a', null);
      assert.equal(await settings.getAccountLimit('a'), null);
      // account states: absent means active; set, replaced and removed by account id
      assert.equal(await settings.getAccountState('a'), null);
      await settings.putAccountState('a', { accountId: 'a', status: 'suspended', since: t(1), updatedAt: t(1) });
      await settings.putAccountState('b', { accountId: 'b', status: 'suspended', since: t(1), updatedAt: t(1) });
      assert.deepEqual(await settings.getAccountState('a'), { accountId: 'a', status: 'suspended', since: t(1), updatedAt: t(1) });
      await settings.putAccountState('a', { accountId: 'a', status: 'closed', since: t(2), updatedAt: t(3) });
      assert.deepEqual(await settings.getAccountState('a'), { accountId: 'a', status: 'closed', since: t(2), updatedAt: t(3) });
      await settings.putAccountState('b', null);
      assert.equal(await settings.getAccountState('b'), null);
      assert.equal((await settings.getAccountState('a'))?.status, 'closed');
    },
  },
  ...roundTripCases,
  ...imageMoveCases,
  ...outboxCases,
  ...outboxWriteCases,
  ...imageCapCases,
];

/** Registers the repository conformance suite with the caller's test framework. */
export function testRepositories(api: TestApi, options: RepositorySuiteOptions): void {
  api.describe(`repository conformance: ${options.name}`, () => {
    for (const testCase of repositoryCases) {
      if (options.outbox === false && testCase.name.startsWith('outbox: ')) continue;
      api.it(
        testCase.name,
        async () => {
          const repos = await options.create();
          try {
            await testCase.run(repos);
          } finally {
            if (options.destroy) await options.destroy(repos);
            else await repos.close?.();
          }
        },
        options.timeout ?? 30_000,
      );
    }
  });
}

/** Runs one case by name against fresh repositories (used to prove the suite catches broken implementations). */
export async function runRepositoryCase(name: string, repos: Repositories): Promise<void> {
  const testCase = repositoryCases.find((c) => c.name === name);
  if (!testCase) throw new Error(`unknown conformance case ${name}`);
  await testCase.run(repos);
}

/** A unique id, for tests that need one. */
export const uniqueId = (): string => randomUUID();
