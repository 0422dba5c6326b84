/**
 * The S3 driver against the real Ceph radosgw: multipart round trips, ranges, paging under a
 * prefix, cancel and failure cleanup, incomplete uploads, and errors that name the problem
 * without leaking the secret key.
 */
import { CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { InstanceImagesError } from '../../../src/errors';
import type { StorageDriver } from '../../../src/ports/storage-driver';
import { digestStream, randomData, readAll, stallingStream, streamOf } from './data';
import { allObjectKeys, driverOptions, loadS3TestEnv, openMultipartUploads, useTestBucket } from './s3-env';

const MiB = 1024 * 1024;
const loaded = await loadS3TestEnv();

/** Catches the error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<InstanceImagesError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(InstanceImagesError);
    return error as InstanceImagesError;
  }
  throw new Error('expected the promise to reject');
}

/** Asserts the secret key appears nowhere in the error: message, JSON, details, or stack. */
function expectNoSecret(error: InstanceImagesError, secret: string): void {
  expect(error.message).not.toContain(secret);
  expect(JSON.stringify(error)).not.toContain(secret);
  expect(JSON.stringify(error.details)).not.toContain(secret);
  expect(String(error.stack)).not.toContain(secret);
}

describe.skipIf(loaded.env === null)(`s3 driver on radosgw${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`, () => {
  const env = loaded.env!;
  const s3 = useTestBucket(env, 's3drv');
  const { bucket } = s3;
  let driver: StorageDriver;
  const drivers: StorageDriver[] = [];

  /** A driver on the test bucket; closed after the file. */
  const makeDriver = (extra: Parameters<typeof driverOptions>[2] = {}): StorageDriver => {
    const created = s3StorageDriver.create(driverOptions(env, extra.bucket ?? bucket, extra), {});
    drivers.push(created);
    return created;
  };

  beforeAll(async () => {
    driver = makeDriver({ prefix: '/images//custom/', partSizeBytes: 5 * MiB });
  });

  afterAll(async () => {
    for (const created of drivers) await created.close?.();
  });

  it('declares a shared backend without path access and unknown free space', async () => {
    expect(driver.capabilities).toEqual({ shared: true, pathAccess: false, verifiesSha256: true });
    expect(driver.pathOf).toBeUndefined();
    expect(await driver.freeSpace()).toBeNull();
    expect(await driver.health()).toEqual({ ok: true, message: expect.stringContaining(bucket) });
  });

  it('round-trips a multipart object under the normalized prefix with per-part progress', async () => {
    const { data, sha256 } = randomData(12 * MiB + 12345);
    const progress: number[] = [];
    const onProgress = (bytes: number) => progress.push(bytes);
    const result = await driver.put('vm-1/disk.qcow2', streamOf(data), { size: data.length, onProgress } as never);
    expect(result).toEqual({ size: data.length });
    expect(progress.length).toBe(3);
    expect(progress.at(-1)).toBe(data.length);
    expect(await allObjectKeys(s3.admin, bucket)).toContain('images/custom/vm-1/disk.qcow2');
    const stat = await driver.stat('vm-1/disk.qcow2');
    expect(stat).toMatchObject({ key: 'vm-1/disk.qcow2', size: data.length });
    expect(stat?.modifiedAt).toBeInstanceOf(Date);
    expect(await digestStream(await driver.get('vm-1/disk.qcow2'))).toEqual({ sha256, size: data.length });
    expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
  });

  it('stores objects of unknown size and empty objects', async () => {
    const { data, sha256 } = randomData(6 * MiB + 1);
    expect(await driver.put('unknown-size.raw', streamOf(data))).toEqual({ size: data.length });
    expect(await digestStream(await driver.get('unknown-size.raw'))).toEqual({ sha256, size: data.length });
    expect(await driver.put('empty.raw', streamOf(Buffer.alloc(0)), { size: 0 })).toEqual({ size: 0 });
    expect(await driver.stat('empty.raw')).toMatchObject({ size: 0 });
    expect((await readAll(await driver.get('empty.raw'))).length).toBe(0);
    // Unknown sizes that end within the first part (empty, and exactly one part): one PutObject each.
    expect(await driver.put('empty-unknown.raw', streamOf(Buffer.alloc(0)))).toEqual({ size: 0 });
    expect(await driver.stat('empty-unknown.raw')).toMatchObject({ size: 0 });
    const one = randomData(5 * MiB);
    expect(await driver.put('one-part.raw', streamOf(one.data))).toEqual({ size: one.data.length });
    expect(await digestStream(await driver.get('one-part.raw'))).toEqual({ sha256: one.sha256, size: one.data.length });
    expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
  });

  it('reads inclusive byte ranges, open-ended ranges, and rejects a range past the end', async () => {
    const { data } = randomData(100_000);
    await driver.put('ranged.bin', streamOf(data), { size: data.length });
    expect(await readAll(await driver.get('ranged.bin', { range: { start: 10, end: 19 } }))).toEqual(data.subarray(10, 20));
    expect(await readAll(await driver.get('ranged.bin', { range: { start: 99_990 } }))).toEqual(data.subarray(99_990));
    const error = await failure(driver.get('ranged.bin', { range: { start: 200_000 } }));
    expect(error.code).toBe('VALIDATION_FAILED');
  });

  it('overwrites, stats a missing key as null, deletes idempotently and reports NOT_FOUND', async () => {
    await driver.put('over.bin', streamOf(Buffer.from('first version')));
    await driver.put('over.bin', streamOf(Buffer.from('second')));
    expect((await readAll(await driver.get('over.bin'))).toString()).toBe('second');
    await driver.delete('over.bin');
    await driver.delete('over.bin');
    expect(await driver.stat('over.bin')).toBeNull();
    const error = await failure(driver.get('over.bin'));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toContain('over.bin');
  });

  it('pages through a listing with continuation cursors, only under its prefix', async () => {
    const lister = makeDriver({ prefix: 'paging' });
    await s3.admin.send(new PutObjectCommand({ Bucket: bucket, Key: 'paging-not-mine.bin', Body: Buffer.from('x') }));
    await s3.admin.send(new PutObjectCommand({ Bucket: bucket, Key: 'paging/folder/', Body: Buffer.alloc(0) }));
    const keys = Array.from({ length: 7 }, (_, index) => `set/item-${index}.bin`);
    for (const key of keys) await lister.put(key, streamOf(Buffer.from(key)));
    await lister.put('other/outside-list-prefix.bin', streamOf(Buffer.from('o')));

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await lister.list({ prefix: 'set/', limit: 3, cursor });
      expect(page.items.length).toBeLessThanOrEqual(3);
      for (const item of page.items) {
        expect(item.size).toBe(Buffer.byteLength(item.key));
        expect(item.modifiedAt).toBeInstanceOf(Date);
      }
      seen.push(...page.items.map((item) => item.key));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual([...keys].sort());

    const everything = await lister.list({ limit: 1000 });
    expect(everything.items.map((item) => item.key)).toEqual(['other/outside-list-prefix.bin', ...[...keys].sort()]);
    expect(everything.nextCursor).toBeNull();
  });

  it('cancelling a put mid-stream rejects with CANCELLED and leaves no object and no multipart upload', async () => {
    const controller = new AbortController();
    const body = stallingStream(7 * MiB);
    const putting = driver.put('cancelled.qcow2', body, {
      size: 64 * MiB,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    } as never);
    const error = await failure(putting);
    expect(error.code).toBe('CANCELLED');
    expect(body.destroyed).toBe(true);
    expect(await driver.stat('cancelled.qcow2')).toBeNull();
    expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
  });

  it('an already-aborted signal sends nothing', async () => {
    const body = streamOf(Buffer.from('never sent'));
    const error = await failure(driver.put('pre-aborted.bin', body, { signal: AbortSignal.abort() }));
    expect(error.code).toBe('CANCELLED');
    expect(await driver.stat('pre-aborted.bin')).toBeNull();
  });

  it('a body shorter than the announced size stores nothing and leaves no multipart upload', async () => {
    const { data } = randomData(11 * MiB);
    const error = await failure(driver.put('short.qcow2', streamOf(data), { size: 12 * MiB }));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.details).toMatchObject({ expected: 12 * MiB, received: 11 * MiB });
    const small = await failure(driver.put('short-small.bin', streamOf(Buffer.from('abc')), { size: 10 }));
    expect(small.code).toBe('VALIDATION_FAILED');
    expect(await driver.stat('short.qcow2')).toBeNull();
    expect(await driver.stat('short-small.bin')).toBeNull();
    expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
  });

  it('a failing body stream aborts the multipart upload and surfaces the stream error', async () => {
    const body = stallingStream(6 * MiB);
    const sourceError = new InstanceImagesError('HYPERVISOR_UNREACHABLE', 'The SSH connection dropped');
    setTimeout(() => body.destroy(sourceError), 300);
    const error = await failure(driver.put('broken-source.qcow2', body, { size: 64 * MiB }));
    expect(error).toBe(sourceError);
    expect(await driver.stat('broken-source.qcow2')).toBeNull();
    expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
  });

  it('lists incomplete multipart uploads under its prefix only and aborts them idempotently', async () => {
    const mine = await s3.admin.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'images/custom/left/behind.qcow2' }));
    await s3.admin.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: 'images/custom/left/behind.qcow2',
        UploadId: mine.UploadId,
        PartNumber: 1,
        Body: Buffer.alloc(1024),
      }),
    );
    const foreign = await s3.admin.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'elsewhere/other.qcow2' }));

    const listed = await driver.listIncomplete();
    expect(listed).toEqual([{ key: 'left/behind.qcow2', id: mine.UploadId, startedAt: expect.any(Date) }]);
    expect(await driver.listIncomplete({ olderThan: new Date(Date.now() - 3_600_000) })).toEqual([]);
    expect(await driver.listIncomplete({ olderThan: new Date(Date.now() + 3_600_000) })).toHaveLength(1);

    const upload = listed[0]!;
    await driver.abortIncomplete(upload);
    await driver.abortIncomplete(upload);
    expect(await driver.listIncomplete()).toEqual([]);
    expect(await openMultipartUploads(s3.admin, bucket)).toEqual([{ key: 'elsewhere/other.qcow2', id: foreign.UploadId }]);
    const elsewhere = makeDriver({ prefix: 'elsewhere' });
    await elsewhere.abortIncomplete({ key: 'other.qcow2', id: foreign.UploadId!, startedAt: null });
    expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
  });

  it('concurrent puts of different keys all land intact', async () => {
    const items = Array.from({ length: 4 }, (_, index) => ({ key: `parallel/${index}.bin`, ...randomData(MiB + index) }));
    await Promise.all(items.map((item) => driver.put(item.key, streamOf(item.data), { size: item.data.length })));
    for (const item of items)
      expect(await digestStream(await driver.get(item.key))).toEqual({ sha256: item.sha256, size: item.data.length });
  });

  it('a cancelled get destroys the stream with CANCELLED', async () => {
    const { data } = randomData(8 * MiB);
    await driver.put('read-cancel.bin', streamOf(data), { size: data.length });
    const controller = new AbortController();
    const stream = await driver.get('read-cancel.bin', { signal: controller.signal });
    const reading = digestStream(stream);
    controller.abort();
    const error = await reading.then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(InstanceImagesError);
    expect((error as InstanceImagesError).code).toBe('CANCELLED');
  });

  describe('failures are STORAGE_UNAVAILABLE with actionable messages and never the secret', () => {
    it('a wrong secret key', async () => {
      const wrongSecret = 'wrong-secret-key-3f9a1c7e5b';
      const bad = makeDriver({ secretAccessKey: wrongSecret });
      const health = await bad.health();
      expect(health.ok).toBe(false);
      expect(health.message).not.toContain(wrongSecret);
      expect(health.message).not.toContain(env.secretAccessKey);
      expect(health.message).toMatch(/credentials|secretAccessKey/);
      const attempts = [
        () => bad.put('x.bin', streamOf(Buffer.alloc(10))),
        () => bad.stat('x.bin'),
        () => bad.list(),
        () => bad.get('x.bin'),
        () => bad.delete('x.bin'),
        () => bad.listIncomplete(),
      ];
      for (const attempt of attempts) {
        const error = await failure(attempt());
        expect(error.code).toBe('STORAGE_UNAVAILABLE');
        expect(error.message).toContain('accessKeyId and secretAccessKey');
        expectNoSecret(error, wrongSecret);
        expectNoSecret(error, env.secretAccessKey);
      }
    });

    it('an unknown access key id', async () => {
      const bad = makeDriver({ accessKeyId: 'no-such-access-key' });
      const error = await failure(bad.list());
      expect(error.code).toBe('STORAGE_UNAVAILABLE');
      expect(error.details.s3Error).toBe('InvalidAccessKeyId');
      expectNoSecret(error, env.secretAccessKey);
    });

    it('a missing bucket', async () => {
      const missing = makeDriver({ bucket: 'ii-no-such-bucket-4242' });
      const health = await missing.health();
      expect(health).toEqual({ ok: false, message: expect.stringContaining('does not exist') });
      const error = await failure(missing.put('x.bin', streamOf(Buffer.alloc(10))));
      expect(error.code).toBe('STORAGE_UNAVAILABLE');
      expect(error.message).toContain('ii-no-such-bucket-4242');
      expectNoSecret(error, env.secretAccessKey);
      expect((await failure(missing.delete('x.bin'))).code).toBe('STORAGE_UNAVAILABLE');
    });

    it('an endpoint nobody listens on', async () => {
      const nowhere = makeDriver({ endpoint: 'http://127.0.0.1:9' });
      const health = await nowhere.health();
      expect(health.ok).toBe(false);
      expect(health.message).toContain('ECONNREFUSED');
      const error = await failure(nowhere.put('x.bin', streamOf(Buffer.alloc(10))));
      expect(error.code).toBe('STORAGE_UNAVAILABLE');
      expect(error.message).toContain('http://127.0.0.1:9');
      expectNoSecret(error, env.secretAccessKey);
    });
  });

  it('a closed driver refuses further work', async () => {
    const closing = makeDriver();
    await closing.stat('anything');
    await closing.close?.();
    expect((await failure(closing.stat('anything'))).code).toBe('STORAGE_UNAVAILABLE');
  });
});
