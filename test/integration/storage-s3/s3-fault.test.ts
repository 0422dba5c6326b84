/**
 * Fault test: radosgw crashes (SIGKILL) in the middle of a multipart upload. The put must fail
 * with STORAGE_UNAVAILABLE, and once radosgw is back the incomplete upload it could not abort is
 * found by listIncomplete and removed by abortIncomplete, leaving nothing behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { InstanceImagesError } from '../../../src/errors';
import type { StorageDriver } from '../../../src/ports/storage-driver';
import { randomData, streamOf } from './data';
import { driverOptions, ensureRadosgwUp, killRadosgw, loadS3TestEnv, openMultipartUploads, radosgwPid, useTestBucket } from './s3-env';

const MiB = 1024 * 1024;
const loaded = await loadS3TestEnv();

describe.skipIf(loaded.env === null)(
  `s3 driver when radosgw crashes mid-upload${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`,
  () => {
    const env = loaded.env!;
    const s3 = useTestBucket(env, 's3fault');
    const { bucket } = s3;
    let driver: StorageDriver;

    beforeAll(async () => {
      driver = s3StorageDriver.create(driverOptions(env, bucket, { prefix: 'fault', partSizeBytes: 5 * MiB, queueSize: 2 }), {});
    });

    afterAll(async () => {
      // Whatever happened above, radosgw must be running again for everyone else.
      await ensureRadosgwUp(env.endpoint);
      await driver.close?.();
    });

    it('fails the put with STORAGE_UNAVAILABLE and cleans the incomplete upload up after the restart', async () => {
      const { data } = randomData(30 * MiB);
      const before = radosgwPid();
      let killed: Promise<number> | undefined;
      const onProgress = (): void => {
        // The first part is stored: the multipart upload exists and more parts are on their way.
        killed ??= killRadosgw();
      };

      let caught: unknown;
      try {
        await driver.put('crash/disk.qcow2', streamOf(data), { size: data.length, onProgress } as never);
      } catch (error) {
        caught = error;
      }
      expect(killed).toBeDefined();
      expect(await killed).toBe(before);
      expect(caught).toBeInstanceOf(InstanceImagesError);
      const error = caught as InstanceImagesError;
      expect(error.code).toBe('STORAGE_UNAVAILABLE');
      expect(error.message).toContain(env.endpoint);
      expect(error.message).not.toContain(env.secretAccessKey);
      expect(JSON.stringify(error)).not.toContain(env.secretAccessKey);
      // The abort could not reach the dead server: the error says which upload is left.
      expect(error.details.incompleteUpload).toEqual({ key: 'crash/disk.qcow2', id: expect.any(String) });
      const health = await driver.health();
      expect(health.ok).toBe(false);

      await ensureRadosgwUp(env.endpoint);
      expect(radosgwPid()).not.toBe(before);
      expect(await driver.health()).toMatchObject({ ok: true });

      const incomplete = await driver.listIncomplete();
      expect(incomplete.map((upload) => ({ key: upload.key, id: upload.id }))).toEqual([error.details.incompleteUpload]);
      for (const upload of incomplete) await driver.abortIncomplete(upload);
      expect(await driver.listIncomplete()).toEqual([]);
      expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
      expect(await driver.stat('crash/disk.qcow2')).toBeNull();

      // The driver works normally again after the restart.
      const { data: after } = randomData(MiB);
      expect(await driver.put('crash/after.bin', streamOf(after), { size: after.length })).toEqual({ size: after.length });
    });
  },
);
