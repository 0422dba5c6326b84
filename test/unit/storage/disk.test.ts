import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { InstanceImagesError } from '../../../src/errors';
import { describe, expect, it } from 'vitest';
import { wrapStorageDriver, type StorageOperationEvent } from '../../../src/storage/disk';
import { createMemoryStorageDriver } from './memory-driver';
import { codeOf } from '../../support/errors';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('wrapStorageDriver', () => {
  it('returns size and sha256, reports progress in bounded steps and emits put.completed', async () => {
    const driver = createMemoryStorageDriver();
    const events: StorageOperationEvent[] = [];
    const disk = wrapStorageDriver(driver, { onEvent: (e) => events.push(e), progressIntervalBytes: 1024 * 1024 });
    const data = randomBytes(5 * 1024 * 1024 + 3);
    const progress: number[] = [];
    const result = await disk.put('a/b.qcow2', Readable.from([data.subarray(0, 100), data.subarray(100)]), {
      size: data.length,
      onProgress: (p) => progress.push(p.bytesDone),
    });
    expect(result).toEqual({ key: 'a/b.qcow2', size: data.length, sha256: sha(data) });
    expect(progress[progress.length - 1]).toBe(data.length);
    expect(progress.length).toBeLessThanOrEqual(7);
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
    expect(events).toEqual([{ type: 'put.completed', driver: 'memory', key: 'a/b.qcow2', size: data.length, sha256: sha(data) }]);
  });

  it('normalizes keys (NFC) before the driver sees them', async () => {
    const driver = createMemoryStorageDriver();
    const disk = wrapStorageDriver(driver);
    await disk.put('cafe\u0301', Readable.from([Buffer.from('x')]));
    expect([...driver.objects.keys()]).toEqual(['caf\u00e9']);
  });

  it('removes the object and throws CHECKSUM_MISMATCH when the expected sha256 differs', async () => {
    const driver = createMemoryStorageDriver();
    const disk = wrapStorageDriver(driver);
    expect(await codeOf(disk.put('x', Readable.from([Buffer.from('abc')]), { expectedSha256: sha(Buffer.from('abd')) }))).toBe(
      'CHECKSUM_MISMATCH',
    );
    expect(driver.objects.size).toBe(0);
    await disk.put('y', Readable.from([Buffer.from('abc')]), { expectedSha256: sha(Buffer.from('abc')).toUpperCase() });
    expect(driver.objects.has('y')).toBe(true);
  });

  it("takes the caller's sha256 of the body instead of hashing it again (bodySha256), and removes the object when it has none", async () => {
    const driver = createMemoryStorageDriver();
    const disk = wrapStorageDriver(driver);
    const data = Buffer.from('abc');
    let asked = 0;
    // The caller's digest is what the result and the expected-sha256 check use: proof it is not hashed again.
    const claimed = sha(Buffer.from('what the caller hashed'));
    const result = await disk.put('a', Readable.from([data]), { bodySha256: () => (asked++, claimed) });
    expect(result).toEqual({ key: 'a', size: 3, sha256: claimed });
    expect(asked).toBe(1);
    expect(await codeOf(disk.put('b', Readable.from([data]), { bodySha256: () => claimed, expectedSha256: sha(data) }))).toBe(
      'CHECKSUM_MISMATCH',
    );
    // No digest (the caller's hash is incomplete) or a malformed one: nothing stays.
    expect(await codeOf(disk.put('c', Readable.from([data]), { bodySha256: () => null }))).toBe('CHECKSUM_MISMATCH');
    expect(await codeOf(disk.put('d', Readable.from([data]), { bodySha256: () => 'not hex' }))).toBe('CHECKSUM_MISMATCH');
    expect([...driver.objects.keys()]).toEqual(['a']);
  });

  it('removes the object when the body does not have the announced size', async () => {
    const driver = createMemoryStorageDriver();
    const events: StorageOperationEvent[] = [];
    const disk = wrapStorageDriver(driver, { onEvent: (e) => events.push(e) });
    expect(await codeOf(disk.put('x', Readable.from([Buffer.from('abc')]), { size: 4 }))).toBe('VALIDATION_FAILED');
    expect(driver.objects.size).toBe(0);
    expect(events.map((e) => e.type)).toEqual(['put.failed']);
  });

  it('verifies the stored size after put', async () => {
    const driver = createMemoryStorageDriver();
    const lying = { ...driver, stat: async (key: string) => ({ key, size: 1, modifiedAt: new Date() }) };
    const disk = wrapStorageDriver(lying);
    expect(await codeOf(disk.put('x', Readable.from([Buffer.from('abc')])))).toBe('CHECKSUM_MISMATCH');
    expect(driver.objects.size).toBe(0);
  });

  it('propagates a failing body into the driver and reports STORAGE_UNAVAILABLE', async () => {
    const driver = createMemoryStorageDriver();
    const disk = wrapStorageDriver(driver);
    const body = new Readable({
      read() {
        this.destroy(new Error('source disk read error'));
      },
    });
    expect(await codeOf(disk.put('x', body))).toBe('STORAGE_UNAVAILABLE');
    expect(driver.objects.size).toBe(0);
    expect(await driver.listIncomplete()).toEqual([]);
  });

  it('rejects an already-aborted put with CANCELLED without calling the driver', async () => {
    const driver = createMemoryStorageDriver();
    let calls = 0;
    const disk = wrapStorageDriver({ ...driver, put: async (...args) => (calls++, driver.put(...args)) });
    const controller = new AbortController();
    controller.abort();
    expect(await codeOf(disk.put('x', Readable.from([Buffer.from('a')]), { signal: controller.signal }))).toBe('CANCELLED');
    expect(calls).toBe(0);
  });

  it('retries STORAGE_UNAVAILABLE on idempotent operations, with retry events, up to the policy', async () => {
    const driver = createMemoryStorageDriver();
    const events: StorageOperationEvent[] = [];
    const disk = wrapStorageDriver(driver, { retries: { attempts: 3, baseDelayMs: 1 }, onEvent: (e) => events.push(e) });
    await disk.put('k', Readable.from([Buffer.from('data')]));
    driver.failNext = { operation: 'stat', times: 2 };
    expect((await disk.stat('k'))?.size).toBe(4);
    expect(events.filter((e) => e.type === 'retry').map((e) => (e.type === 'retry' ? e.attempt : 0))).toEqual([1, 2]);
    driver.failNext = { operation: 'get', times: 3 };
    expect(await codeOf(disk.get('k'))).toBe('STORAGE_UNAVAILABLE');
    driver.failNext = { operation: 'list', times: 1 };
    expect((await disk.list()).items.map((i) => i.key)).toEqual(['k']);
    driver.failNext = { operation: 'delete', times: 1 };
    await disk.delete('k');
    expect(driver.objects.size).toBe(0);
  });

  it('does not ask a storage that timed out again (each attempt would wait out the whole timeout)', async () => {
    const driver = createMemoryStorageDriver();
    const disk = wrapStorageDriver(driver, { retries: { attempts: 3, baseDelayMs: 1 } });
    let stats = 0;
    driver.stat = async () => {
      stats += 1;
      throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'no answer within 60 s', {
        details: { timeout: 'no-progress', timeoutMs: 60_000 },
      });
    };
    expect(await codeOf(disk.stat('k'))).toBe('STORAGE_UNAVAILABLE');
    expect(stats).toBe(1);
  });

  it('does not retry NOT_FOUND, and validates ranges and page sizes before any I/O', async () => {
    const driver = createMemoryStorageDriver();
    const disk = wrapStorageDriver(driver, { retries: { attempts: 5, baseDelayMs: 1 } });
    expect(await codeOf(disk.get('missing'))).toBe('NOT_FOUND');
    expect(await codeOf(disk.get('k', { range: { start: -1 } }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(disk.get('k', { range: { start: 5, end: 4 } }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(disk.list({ limit: 0 }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(disk.list({ limit: 100_000 }))).toBe('VALIDATION_FAILED');
  });

  it('health never throws, and pathOf needs a path-capable driver', async () => {
    const driver = createMemoryStorageDriver();
    const disk = wrapStorageDriver({
      ...driver,
      health: async () => {
        throw new Error('boom');
      },
    });
    expect(await disk.health()).toEqual({ ok: false, message: 'boom' });
    expect(() => disk.pathOf('x')).toThrow(/no file paths/);
    const pathDisk = wrapStorageDriver({
      ...driver,
      capabilities: { shared: false, pathAccess: true },
      pathOf: (key: string) => `/srv/${key}`,
    });
    expect(pathDisk.pathOf('a/b')).toBe('/srv/a/b');
    expect(() => pathDisk.pathOf('../b')).toThrow(/not valid/);
  });

  it("prepareKey: the driver's own where it has one; a put and delete of an empty marker otherwise; nothing on an object storage", async () => {
    const objectDriver = createMemoryStorageDriver();
    const puts: string[] = [];
    const put = objectDriver.put.bind(objectDriver);
    objectDriver.put = (key, body, options) => (puts.push(key), put(key, body, options));
    await wrapStorageDriver(objectDriver).prepareKey('a/b.qcow2');
    expect(puts).toEqual([]);

    const pathDriver = Object.assign(createMemoryStorageDriver(), { capabilities: { shared: false, pathAccess: true } });
    const pathPuts: string[] = [];
    const pathPut = pathDriver.put.bind(pathDriver);
    pathDriver.put = (key, body, options) => (pathPuts.push(key), pathPut(key, body, options));
    await wrapStorageDriver(pathDriver).prepareKey('a/cafe\u0301.qcow2');
    expect(pathPuts).toEqual(['a/caf\u00e9.qcow2.prepare']);
    expect([...pathDriver.objects.keys()]).toEqual([]);

    const prepared: string[] = [];
    pathDriver.prepareKey = async (key) => void prepared.push(key);
    await wrapStorageDriver(pathDriver).prepareKey('a/c.qcow2');
    expect(prepared).toEqual(['a/c.qcow2']);
    expect(pathPuts).toHaveLength(1);
    expect(await codeOf(wrapStorageDriver(pathDriver).prepareKey('../c.qcow2'))).toBe('VALIDATION_FAILED');
  });
});
