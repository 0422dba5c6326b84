/**
 * Conformance cases that every field of every record survives the host's mapping: the records
 * come from the complete fixtures (every optional field set to a value other than its default),
 * are written with insert, update and transition, and are read back with get and list. A mapper
 * that drops a column, or stores `false`/`0` as NULL, fails here.
 * @module
 */
import assert from 'node:assert/strict';
import type { RepositoryCase } from './repository-suite';
import {
  completeImagePatch,
  completeTaskPatch,
  fixtureTime,
  makeCompleteImage,
  makeCompleteIso,
  makeCompleteLocationSettings,
  makeCompleteMediaGroup,
  makeCompleteStorage,
  makeCompleteTask,
  makeCompleteUsageInterval,
} from './fixtures';

const t = fixtureTime;

/** A patch setting every field `patch` names back to its value in `record`. */
function revert<T extends object, P extends object>(record: T, patch: P): P {
  return Object.fromEntries(Object.keys(patch).map((key) => [key, (record as Record<string, unknown>)[key]])) as P;
}

/** The round-trip cases (part of `repositoryCases`). */
export const roundTripCases: readonly RepositoryCase[] = [
  {
    name: 'images: every field round-trips through insert, get, list, update and transition',
    async run({ images }) {
      const image = makeCompleteImage();
      await images.insert(image);
      assert.deepEqual(await images.get(image.id), image, 'get returns every field as inserted');
      const listed = (await images.list({ accountId: image.accountId ?? undefined })).items.find((i) => i.id === image.id);
      assert.deepEqual(listed, image, 'list returns every field as inserted');
      const patch = completeImagePatch();
      const updated = { ...image, ...patch, updatedAt: t(20) };
      assert.deepEqual(await images.update(image.id, patch, t(20)), updated, 'update returns every patched field');
      assert.deepEqual(await images.get(image.id), updated, 'get returns every patched field');
      const back = { ...image, status: 'error' as const, updatedAt: t(21) };
      assert.deepEqual(
        await images.transition(image.id, ['available'], 'error', revert(image, patch), t(21)),
        back,
        'transition applies every patched field',
      );
      assert.deepEqual(await images.get(image.id), back);
      const hidden = makeCompleteImage({ status: 'deleted' });
      await images.insert(hidden);
      assert.deepEqual(
        (await images.list({ includeDeleted: true, accountId: hidden.accountId ?? undefined })).items.find((i) => i.id === hidden.id),
        hidden,
      );
    },
  },
  {
    name: 'images: a capped insert keeps every field',
    async run({ images }) {
      const image = makeCompleteImage({ status: 'creating', kind: 'custom' });
      assert.equal(await images.insertIfUnderLimit(image, { accountId: image.accountId ?? '', max: 1 }), true);
      assert.deepEqual(await images.get(image.id), image);
    },
  },
  {
    name: 'storages and bindings: every field round-trips',
    async run({ storages }) {
      const storage = makeCompleteStorage();
      await storages.insert(storage);
      assert.deepEqual(await storages.get(storage.id), storage);
      assert.deepEqual(
        (await storages.list({ purpose: 'templates' })).find((s) => s.id === storage.id),
        storage,
      );
      const patch = {
        name: 'renamed-storage',
        driver: 'nfs',
        config: { server: 'nas', export: '/x', options: ['ro'] },
        purpose: 'custom-images' as const,
        enabled: true,
        layout: 'files' as const,
        chunks: { scope: 'storage' as const, codec: 'none' as const, chunkSizeBytes: 2 ** 22 },
      };
      const updated = { ...storage, ...patch, updatedAt: t(20) };
      assert.deepEqual(await storages.update(storage.id, patch, t(20)), updated);
      assert.deepEqual(await storages.get(storage.id), updated);
      const binding = await storages.bind(storage.id, 'hv-complete', t(7));
      assert.deepEqual(binding, { storageId: storage.id, hypervisorId: 'hv-complete', createdAt: t(7) });
      assert.deepEqual(await storages.listBindings({ storageId: storage.id }), [binding]);
    },
  },
  {
    name: 'media groups: every field round-trips',
    async run({ mediaGroups }) {
      const group = makeCompleteMediaGroup();
      await mediaGroups.insert(group);
      assert.deepEqual(await mediaGroups.get(group.id), group);
      assert.deepEqual(await mediaGroups.list({ customerVisible: false }), [group]);
      const patch = { name: 'Linux ✓', customerVisible: true, order: -2 };
      const updated = { ...group, ...patch, updatedAt: t(20) };
      assert.deepEqual(await mediaGroups.update(group.id, patch, t(20)), updated);
      assert.deepEqual(await mediaGroups.get(group.id), updated);
    },
  },
  {
    name: 'isos: every field round-trips',
    async run({ isos }) {
      const iso = makeCompleteIso();
      await isos.insert(iso);
      assert.deepEqual(await isos.get(iso.id), iso);
      assert.deepEqual((await isos.list({ customerVisible: false })).items, [iso]);
      const patch = {
        name: 'other-iso',
        description: 'x',
        storageId: 'templates-other',
        fileKey: 'isos/other.iso',
        sizeBytes: 2 ** 34,
        sha256: 'd4'.repeat(32),
        customerVisible: true,
        status: 'available' as const,
        statusReason: { code: 'OK', message: 'fine' },
      };
      const updated = { ...iso, ...patch, updatedAt: t(20) };
      assert.deepEqual(await isos.update(iso.id, patch, t(20)), updated);
      assert.deepEqual(await isos.get(iso.id), updated);
    },
  },
  {
    name: 'tasks: every field round-trips through insert, get, list, update and transition',
    async run({ tasks }) {
      const task = makeCompleteTask();
      await tasks.insert(task);
      assert.deepEqual(await tasks.get(task.id), task);
      assert.deepEqual((await tasks.list({ accountId: task.accountId ?? undefined })).items, [task]);
      const patch = completeTaskPatch();
      const updated = { ...task, ...patch, updatedAt: t(20) };
      assert.deepEqual(await tasks.update(task.id, patch, t(20)), updated);
      assert.deepEqual(await tasks.get(task.id), updated);
      const moved = { ...task, status: 'cancelled' as const, updatedAt: t(21) };
      assert.deepEqual(await tasks.transition(task.id, ['failed'], 'cancelled', revert(task, patch), t(21)), moved);
      assert.deepEqual(await tasks.get(task.id), moved);
      const running = makeCompleteTask({ status: 'running', heartbeatAt: t(0) });
      await tasks.insert(running);
      assert.deepEqual(await tasks.listStale(t(1)), [running]);
    },
  },
  {
    name: 'usage: every field round-trips, closed and open',
    async run({ usage }) {
      const closed = makeCompleteUsageInterval();
      const open = makeCompleteUsageInterval({ from: t(3), to: null });
      await usage.insert(closed);
      await usage.insert(open);
      assert.deepEqual(await usage.get(closed.id), closed);
      assert.deepEqual((await usage.list({ accountId: 'acct-complete' })).items, [closed, open]);
      assert.deepEqual(await usage.close(open.id, t(9)), { ...open, to: t(9) });
    },
  },
  {
    name: 'settings: every field round-trips',
    async run({ settings }) {
      const location = makeCompleteLocationSettings();
      await settings.putLocation(location);
      assert.deepEqual(await settings.getLocation(location.locationId), location);
      assert.deepEqual(await settings.listLocations(), [location]);
      const limit = { accountId: 'acct-complete', imageLimit: 0, imageBytesLimit: 2 ** 50, updatedAt: t(4) };
      await settings.putAccountLimit(limit.accountId, limit);
      assert.deepEqual(await settings.getAccountLimit(limit.accountId), limit, 'a cap of 0 is kept as 0, not as no cap');
    },
  },
];
