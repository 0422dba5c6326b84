/**
 * A chunked capture of a running guest into the real radosgw, with radosgw killed (SIGKILL) once
 * some chunks are stored: the capture fails with a typed error, the image ends in error with a
 * reason (never stuck in creating), the domain keeps no backup job, checkpoint, qemu-nbd or scratch
 * file; once radosgw is back, retrying the image uploads only the chunks that were not stored yet
 * and makes it available with a manifest whose every chunk exists.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createLibvirtDriver } from '../../../drivers/hypervisor/libvirt';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { createInstanceImages, type Actor, type StorageDriverFactory } from '../../../src';
import { createChunkStore } from '../../../src/chunks';
import type { StorageDriver } from '../../../src/ports/storage-driver';
import { wrapStorageDriver } from '../../../src/storage';
import { createTestGuest, virsh, type TestGuest } from '../../support/guests';
import { allObjectKeys, driverOptions, killRadosgw, loadS3TestEnv, restartRadosgw, useTestBucket } from '../storage-s3/s3-env';
import { freshScratchDir, leftovers, libvirtSkipReason, localHypervisor } from './setup';

const MiB = 1024 * 1024;
const PREFIX = 'rgw-kill';
/** Data chunks of the guest's disk (4 MiB each) and how many are stored before radosgw dies. */
const DATA_CHUNKS = 24;
const KILL_AFTER = 6;
const admin: Actor = { kind: 'admin', userId: 'op' };
const customer: Actor = { kind: 'customer', accountId: 'acct-rgw' };

const loaded = await loadS3TestEnv();
const skip = libvirtSkipReason() ?? (loaded.env === null ? loaded.missing : null);

describe.skipIf(skip !== null)(`chunked capture when radosgw is killed mid-capture${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const env = loaded.env!;
  const s3 = useTestBucket(env, 'rgw-kill');
  let guest: TestGuest;
  let scratch: string;
  /** Chunk objects each attempt stored, in order. */
  const stored: string[][] = [[], []];
  let attempt = 0;
  let killed: Promise<number> | null = null;

  /** The s3 driver, with every stored chunk recorded and radosgw killed after the KILL_AFTER-th of the first attempt. */
  const recordingS3: StorageDriverFactory = {
    ...(s3StorageDriver as StorageDriverFactory),
    create: (options, context) => {
      const driver = (s3StorageDriver as StorageDriverFactory).create(options, context) as StorageDriver;
      const record = (key: string) => {
        // The driver adds its prefix itself: the bucket lists `${PREFIX}/chunks/...`.
        if (!key.startsWith('chunks/')) return;
        const mine = stored[attempt] as string[];
        mine.push(`${PREFIX}/${key}`);
        if (attempt === 0 && mine.length === KILL_AFTER) killed ??= killRadosgw();
      };
      return {
        ...driver,
        put: async (key, body, putOptions) => {
          const result = await driver.put(key, body, putOptions);
          record(key);
          return result;
        },
        // Chunks are stored with putBytes.
        putBytes: async (key, bytes, putOptions) => {
          const result = await driver.putBytes!(key, bytes, putOptions);
          record(key);
          return result;
        },
      };
    },
  };

  beforeAll(() => {
    scratch = freshScratchDir('rgw-kill');
    guest = createTestGuest({ start: false, diskMiB: 256, writes: [], cdrom: false, agentChannel: false });
    const random = `${guest.dir}/random.raw`;
    execFileSync('dd', ['if=/dev/urandom', `of=${random}`, 'bs=4M', `count=${DATA_CHUNKS}`, 'status=none']);
    execFileSync('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'qcow2', random, guest.primaryPath]);
    rmSync(random);
    virsh('start', '--domain', guest.name);
  });
  afterAll(async () => {
    // Whatever happened, radosgw answers again before the next suite (and before the bucket goes).
    await restartRadosgw(env.endpoint);
    guest?.remove();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('fails typed, leaves nothing on the domain, and the retry uploads only the missing chunks', async () => {
    const hypervisor = localHypervisor(scratch);
    const executor = createLocalExecutor();
    const ii = createInstanceImages({
      hostDirectory: {
        getInstance: async (id) =>
          id === 'vm-1'
            ? { id, name: 'rgw-kill', accountId: 'acct-rgw', locationId: 'loc', hypervisorId: hypervisor.id, domainName: guest.name }
            : null,
        getHypervisor: async (id) => (id === hypervisor.id ? hypervisor : null),
      },
      storageDrivers: [recordingS3],
      executors: () => executor,
      hypervisorDriver: (hv, exec) => createLibvirtDriver(hv, exec),
      tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50 },
    });
    /** The image once its status is no longer `from` (or as it is after `ms`). */
    const imageLeaving = async (imageId: string, from: string, ms: number) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const current = await ii.images.getImage(customer, imageId);
        if (current.status !== from || Date.now() > deadline) return current;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    try {
      await ii.settings.setLocationSettings(admin, 'loc', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: null });
      const storage = await ii.storages.createStorage(admin, {
        name: 'radosgw chunks',
        driver: 's3',
        config: { ...driverOptions(env, s3.bucket, { prefix: PREFIX }) },
        layout: 'chunks',
      });
      await ii.storages.bindHypervisor(admin, storage.id, hypervisor.id);

      // 1. radosgw dies once KILL_AFTER chunks are stored.
      const { image, task } = await ii.images.createImage(customer, { instanceId: 'vm-1', name: 'killed' });
      const failed = await ii.images.waitForTask(customer, task.id);
      expect(failed).toMatchObject({ status: 'failed', errorCode: 'STORAGE_UNAVAILABLE' });
      expect(killed).not.toBeNull();
      await killed;
      // The image's move to error is written with the task's end (the cleanup of the attempt's
      // manifest key and lease, which meets the dead gateway, comes after): it shows at once.
      const inError = await ii.images.getImage(customer, image.id);
      expect(inError.status).toBe('error');
      expect(inError.statusReason).toMatchObject({ code: 'STORAGE_UNAVAILABLE', message: expect.any(String) });
      expect(JSON.stringify(inError)).not.toContain(env.secretAccessKey);
      // Nothing left on the domain: no job, no checkpoint of the failed attempt, no qemu-nbd, no scratch file.
      expect(virsh('domjobinfo', '--domain', guest.name)).toMatch(/Job type:\s+None/);
      expect(virsh('checkpoint-list', '--name', '--domain', guest.name).trim()).toBe('');
      expect(spawnSync('pgrep', ['-f', `qemu-nbd.*${scratch}`]).status).not.toBe(0);
      expect(leftovers(scratch)).toEqual([]);
      expect(virsh('domstate', '--domain', guest.name).trim()).toBe('running');

      // 2. radosgw back: the chunks stored before the crash are there.
      await restartRadosgw(env.endpoint);
      const keysBefore = new Set((await allObjectKeys(s3.admin, s3.bucket)).filter((k) => k.startsWith(`${PREFIX}/chunks/`)));
      expect(keysBefore.size).toBeGreaterThanOrEqual(KILL_AFTER);
      expect(keysBefore.size).toBeLessThan(DATA_CHUNKS);

      // 3. The retry uploads only what is missing and makes the image available.
      attempt = 1;
      const retried = await ii.images.retryImage(customer, image.id);
      expect((await ii.images.waitForTask(customer, retried.task.id)).status).toBe('completed');
      const available = await imageLeaving(image.id, 'creating', 60_000);
      expect(available.status).toBe('available');
      const resumed = stored[1] as string[];
      expect(resumed.filter((key) => keysBefore.has(key))).toEqual([]);
      expect(resumed.length).toBe(DATA_CHUNKS - keysBefore.size);

      const disk = wrapStorageDriver(s3StorageDriver.create(driverOptions(env, s3.bucket, { prefix: PREFIX }), {}));
      try {
        const manifest = await createChunkStore(disk).readManifest(available.fileKey);
        expect(manifest).not.toBeNull();
        const named = new Set(manifest!.chunks.flatMap((c) => (c ? [`${PREFIX}/chunks/${c.sha256.slice(0, 2)}/${c.sha256}`] : [])));
        expect(named.size).toBe(DATA_CHUNKS);
        const present = new Set(await allObjectKeys(s3.admin, s3.bucket));
        expect([...named].filter((key) => !present.has(key))).toEqual([]);
        expect(manifest!.virtualSizeBytes).toBe(256 * MiB);
      } finally {
        await disk.close();
      }
      expect(leftovers(scratch)).toEqual([]);
    } finally {
      await ii.close();
      await executor.close();
    }
  });
});
