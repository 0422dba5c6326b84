/**
 * The known-size multipart loop against the real radosgw: many parts through a small pool of
 * reused buffers keep every byte (sha256 round trip), cancelling mid-loop and announcing the wrong
 * size leave neither an object nor an incomplete upload. Objects are deleted and radosgw's garbage
 * collection runs afterwards, so the small test cluster does not fill.
 */
import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { ListPartsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { InstanceImagesError } from '../../../src/errors';
import type { StorageDriver } from '../../../src/ports/storage-driver';
import { digestStream, randomData, streamOf } from './data';
import { driverOptions, loadS3TestEnv, openMultipartUploads, SERVICES_DIR, useTestBucket } from './s3-env';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;
const loaded = await loadS3TestEnv();

async function failure(promise: Promise<unknown>): Promise<InstanceImagesError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(InstanceImagesError);
  return error as InstanceImagesError;
}

describe.skipIf(loaded.env === null)(
  `s3 known-size multipart loop on radosgw${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`,
  () => {
    const env = loaded.env!;
    const s3 = useTestBucket(env, 's3parts');
    const { bucket } = s3;
    let driver: StorageDriver;

    beforeAll(async () => {
      driver = s3StorageDriver.create(driverOptions(env, bucket, { prefix: 'parts', partSizeBytes: 5 * MiB, queueSize: 4 }), {});
    });

    afterAll(async () => {
      await driver.close?.();
      await execFileAsync('radosgw-admin', ['gc', 'process', '--include-all'], {
        env: { ...process.env, CEPH_CONF: `${SERVICES_DIR}/ceph/ceph.conf` },
        timeout: 300_000,
      });
    });

    it('stores 23 parts of random data through 4 reused buffers byte for byte', async () => {
      // 110 MiB + a bit: 22 full 5 MiB parts and a short last one; chunks of an odd size straddle every part boundary.
      const { data, sha256 } = randomData(110 * MiB + 54_321);
      const progress: number[] = [];
      const onProgress = (bytes: number): void => {
        progress.push(bytes);
      };
      expect(await driver.put('many/parts.raw', streamOf(data, 100_003), { size: data.length, onProgress } as never)).toEqual({
        size: data.length,
      });
      expect(progress).toHaveLength(23);
      expect([...progress].sort((a, b) => a - b)).toEqual(progress);
      expect(progress.at(-1)).toBe(data.length);
      expect(await driver.stat('many/parts.raw')).toMatchObject({ size: data.length });
      expect(await digestStream(await driver.get('many/parts.raw'))).toEqual({ sha256, size: data.length });
      // Each 5 MiB slice matches too (a reused buffer refilled too early would corrupt a whole part, not the total size).
      for (const part of [0, 7, 21, 22]) {
        const start = part * 5 * MiB;
        const end = Math.min(data.length, start + 5 * MiB) - 1;
        const slice = await digestStream(await driver.get('many/parts.raw', { range: { start, end } }));
        expect(slice).toEqual(await digestStream(streamOf(data.subarray(start, end + 1))));
      }
      expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
      await driver.delete('many/parts.raw');
      expect(await driver.stat('many/parts.raw')).toBeNull();
    });

    it('cancelling mid-loop, with parts in flight and a fast body, leaves no object and no incomplete upload', async () => {
      const { data } = randomData(60 * MiB);
      const controller = new AbortController();
      let uploadId: string | undefined;
      let learning: Promise<void> | undefined;
      // A fast body that holds its second half back until the cancel was sent, so the put cannot finish first.
      const body = Readable.from(
        (async function* () {
          for (let offset = 0; offset < data.length; offset += 256 * 1024) {
            if (offset >= data.length / 2) {
              while (learning === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
              await learning;
            }
            yield data.subarray(offset, offset + 256 * 1024);
          }
        })(),
        { objectMode: false },
      );
      const onProgress = (): void => {
        // After the first stored part: learn the upload id from the server, then cancel while more parts are in flight.
        learning ??= openMultipartUploads(s3.admin, bucket).then((uploads) => {
          uploadId = uploads.find((upload) => upload.key === 'parts/cancel/mid-loop.raw')?.id;
          controller.abort();
        });
      };
      const putting = driver.put('cancel/mid-loop.raw', body, { size: data.length, signal: controller.signal, onProgress } as never);
      const error = await failure(putting);
      expect(error.code).toBe('CANCELLED');
      expect(error.details.incompleteUpload).toBeUndefined();
      expect(body.destroyed).toBe(true);
      expect(await driver.stat('cancel/mid-loop.raw')).toBeNull();
      expect(await driver.listIncomplete()).toEqual([]);
      expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
      await learning;
      expect(uploadId).toEqual(expect.any(String));
      {
        const parts = await s3.admin
          .send(new ListPartsCommand({ Bucket: bucket, Key: 'parts/cancel/mid-loop.raw', UploadId: uploadId }))
          .then(
            () => 'still there',
            (caught: unknown) => (caught as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode,
          );
        // AWS answers NoSuchUpload, radosgw NoSuchKey: both are HTTP 404.
        expect(parts).toBe(404);
      }
    });

    it('a body longer than announced fails before completing, for multipart and single-request puts', async () => {
      const { data } = randomData(17 * MiB);
      const long = await failure(driver.put('long/multipart.raw', streamOf(data), { size: 15 * MiB }));
      expect(long.code).toBe('VALIDATION_FAILED');
      expect(long.details.expected).toBe(15 * MiB);
      const small = await failure(driver.put('long/single.raw', streamOf(data.subarray(0, 2 * MiB)), { size: MiB }));
      expect(small.code).toBe('VALIDATION_FAILED');
      expect(await driver.stat('long/multipart.raw')).toBeNull();
      expect(await driver.stat('long/single.raw')).toBeNull();
      expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
    });

    it('an object of exactly one part is stored with one request and reads back intact', async () => {
      const { data, sha256 } = randomData(5 * MiB);
      expect(await driver.put('single/exact.raw', streamOf(data), { size: data.length })).toEqual({ size: data.length });
      expect(await digestStream(await driver.get('single/exact.raw'))).toEqual({ sha256, size: data.length });
      await driver.delete('single/exact.raw');
    });
  },
);
