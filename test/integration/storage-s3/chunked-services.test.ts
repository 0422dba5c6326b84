/**
 * The services on a chunked S3 storage against the Ceph radosgw (the hypervisor is the fake of
 * test/support): capture, incremental recapture, deploy byte for byte, delete of an intermediate
 * image, garbage collection, and browse/reconcile that take the chunks for the layout's data.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { createInstanceImages, type Actor, type Image, type StorageDriverFactory } from '../../../src';
import { FakeWorld } from '../../support/fakes';
import { allObjectKeys, driverOptions, loadS3TestEnv, useTestBucket } from './s3-env';

const loaded = await loadS3TestEnv();
const PREFIX = 'chunked-services';
const CHUNK = 64 * 1024;
const admin: Actor = { kind: 'admin', userId: 'op' };
const alice: Actor = { kind: 'customer', accountId: 'acct-alice' };

describe.skipIf(loaded.env === null)(`chunked images on radosgw${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`, () => {
  const env = loaded.env!;
  const s3 = useTestBucket(env, 'chunked-services');
  const world = new FakeWorld();
  world.addHypervisor('hv-1');
  const clock = { now: new Date('2026-11-03T10:15:00.000Z') };
  const ii = createInstanceImages({
    hostDirectory: world.hostDirectory(),
    executors: world.executors(),
    hypervisorDriver: world.hypervisorFactory(),
    storageDrivers: [s3StorageDriver as StorageDriverFactory],
    tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50 },
    clock: () => new Date(clock.now.getTime()),
  });
  const chunkObjects = async () =>
    (await allObjectKeys(s3.admin, s3.bucket)).map((key) => key.slice(PREFIX.length + 1)).filter((key) => key.startsWith('chunks/'));
  const capture = async (name: string): Promise<Image> => {
    clock.now = new Date(clock.now.getTime() + 60_000);
    const { image } = await ii.images.createImage(alice, { instanceId: 'vm-1', name });
    await ii.idle();
    return ii.images.getImage(alice, image.id);
  };
  let deploys = 0;
  const deployBytes = async (image: Image): Promise<Buffer> => {
    const targetPath = `/vms/it-${++deploys}.raw`;
    const { task } = await ii.catalog.deployImage(alice, { imageId: image.id, instanceId: 'target', targetPath });
    expect((await ii.images.waitForTask(alice, task.id)).status).toBe('completed');
    return world.files.get(`hv-1:${targetPath}`)!.bytes;
  };

  afterAll(async () => {
    await ii.close();
  });

  it('captures, recaptures incrementally, deploys, deletes and collects on real objects', async () => {
    await ii.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: null });
    const storage = await ii.storages.createStorage(admin, {
      name: 'radosgw chunks',
      driver: 's3',
      config: { ...driverOptions(env, s3.bucket, { prefix: PREFIX }) },
      layout: 'chunks',
      chunks: { chunkSizeBytes: CHUNK },
    });
    await ii.storages.bindHypervisor(admin, storage.id, 'hv-1');
    world.addInstance('vm-1', 'acct-alice', { disk: randomBytes(6 * CHUNK), virtualSize: 16 * CHUNK });
    world.addInstance('target', 'acct-alice');

    const first = await capture('first');
    expect(first).toMatchObject({ status: 'available', format: 'raw', sizeBytes: 6 * CHUNK, virtualSizeBytes: 16 * CHUNK });
    const diskFirst = world.guestDisk('dom-vm-1');
    expect(await chunkObjects()).toHaveLength(6);

    world.writeDisk('dom-vm-1', 2 * CHUNK, randomBytes(CHUNK));
    const second = await capture('second');
    expect(second.status).toBe('available');
    expect(world.chunkReads[1]!.filter((r) => r.kind === 'data').map((r) => r.index)).toEqual([2]);
    expect(await chunkObjects()).toHaveLength(7);
    const diskSecond = world.guestDisk('dom-vm-1');

    world.writeDisk('dom-vm-1', 9 * CHUNK, randomBytes(CHUNK));
    const third = await capture('third');
    const diskThird = world.guestDisk('dom-vm-1');
    expect((await deployBytes(third)).equals(diskThird)).toBe(true);

    const health = await ii.storages.checkHealth(admin, storage.id);
    expect(health.chunks).toMatchObject({ manifests: 3, chunks: 8, uniqueBytes: 8 * CHUNK, logicalBytes: (6 + 6 + 7) * CHUNK });
    const browsed = await ii.storages.browse(admin, storage.id, { limit: 1000 });
    expect(browsed.items.filter((item) => item.kind !== 'ok')).toEqual([]);
    expect(await ii.storages.reconcile(admin, storage.id, { deleteOrphans: true, markMissing: true, dryRun: false })).toEqual([]);

    // deleting the first image frees its own version of chunk 2; second and third stay deployable
    await ii.images.deleteImage(alice, first.id);
    await ii.idle();
    await ii.storages.collectGarbage(admin, storage.id);
    await ii.idle();
    expect(await chunkObjects()).toHaveLength(7);
    expect((await deployBytes(second)).equals(diskSecond)).toBe(true);
    expect((await deployBytes(third)).equals(diskThird)).toBe(true);
    expect(diskFirst.equals(diskSecond)).toBe(false);
  });
});
