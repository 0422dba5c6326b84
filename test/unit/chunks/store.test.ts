/**
 * The chunk store over an in-memory storage: round trips, zero chunks, dedup, incremental captures
 * from a base, resume after an interrupted capture, damaged and missing chunks, backpressure.
 */
import { randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createChunkStore, isZstdAvailable, standaloneSize, type ChunkStoreOptions } from '../../../src/chunks';
import { chunkKey } from '../../../src/chunks/keys';
import { InstanceImagesError } from '../../../src/errors';
import type { StorageDriver } from '../../../src/ports/storage-driver';
import { wrapStorageDriver } from '../../../src/storage/disk';
import {
  CHUNK,
  assemble,
  block,
  createMemoryObjects,
  diskBytes,
  diskChunks,
  diskInfo,
  memoryDisk,
  memoryStorageDriver,
  sha256,
  ticks,
  type MemoryClientOptions,
  type MemoryObjects,
} from '../../support/memory-storage';

const KEY = 'images/acct/one.manifest.json';

function setup(options: ChunkStoreOptions = {}, client: MemoryClientOptions = {}) {
  const objects = createMemoryObjects();
  const store = createChunkStore(memoryDisk(objects, client), { sweepPollMs: 1, ...options });
  return { objects, store };
}

const chunkKeys = (objects: MemoryObjects) => [...objects.objects.keys()].filter((key) => key.startsWith('chunks/')).sort();

async function failure(promise: Promise<unknown> | (() => Promise<unknown>)): Promise<InstanceImagesError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    expect(error).toBeInstanceOf(InstanceImagesError);
    return error as InstanceImagesError;
  }
  throw new Error('expected a rejection');
}

async function capture(store: ReturnType<typeof setup>['store'], ids: number[], key = KEY, leaseId = 'cap-1') {
  const pending = await store.writeImage(diskChunks(ids), diskInfo(ids), { leaseId });
  await pending.commit(key);
  return pending;
}

describe('chunk store: write and read', () => {
  it('round-trips a disk: manifest written last, zero chunks never stored, bytes read back identical', async () => {
    const { objects, store } = setup();
    const ids = [1, 0, 2, 3, 0, 0, 4];
    const lastLength = 1000;
    const pending = await store.writeImage(diskChunks(ids, { lastLength }), diskInfo(ids, null, lastLength), { leaseId: 'cap-1' });
    expect(objects.objects.has(KEY)).toBe(false);
    expect(objects.objects.has('chunk-leases/cap-1.json')).toBe(true);
    await pending.commit(KEY);
    expect(objects.puts.at(-1)).toBe(KEY); // the manifest is the last thing written
    expect(objects.objects.has('chunk-leases/cap-1.json')).toBe(false); // W5

    expect(pending.uploadedChunks).toBe(4);
    expect(chunkKeys(objects)).toHaveLength(4);
    expect(pending.manifest.chunks.map((c) => c === null)).toEqual([false, true, false, false, true, true, false]);
    expect(pending.manifest.chunks[6]).toEqual({ sha256: sha256(block(4, lastLength)), storedBytes: lastLength, codec: 'none' });
    expect(standaloneSize(pending.manifest)).toBe(3 * CHUNK + lastLength);

    const manifest = await store.readManifest(KEY);
    expect(manifest).toEqual(pending.manifest);
    const bytes = await assemble(manifest!.virtualSizeBytes, store.readImage(manifest!, { leaseId: 'dep-1', manifestKey: KEY }));
    expect(bytes.equals(diskBytes(ids, lastLength))).toBe(true);
    expect([...objects.objects.keys()].some((key) => key.startsWith('chunk-leases/'))).toBe(false);
  });

  it('stores an all-zero data chunk as a zero marker, and an empty disk as no chunks at all', async () => {
    const { objects, store } = setup();
    const pending = await store.writeImage(diskChunks([0, 5], { zeroAsData: true }), diskInfo([0, 5]), { leaseId: 'z' });
    expect(pending.manifest.chunks[0]).toBeNull();
    expect(chunkKeys(objects)).toEqual([chunkKey({ kind: 'storage' }, sha256(block(5)))]);
    await pending.abandon();
    const empty = await store.writeImage(
      diskChunks([]),
      { virtualSizeBytes: 0, chunkSizeBytes: CHUNK, incrementalSince: null },
      { leaseId: 'e' },
    );
    expect(empty.manifest.chunks).toEqual([]);
  });

  it('dedups across two images and within one: the second capture uploads only its new chunks', async () => {
    const { objects, store } = setup();
    const first = await capture(store, [1, 2, 3, 1], 'images/a.manifest.json', 'a');
    expect(first.uploadedChunks).toBe(3);
    expect(first.reusedChunks).toBe(1);
    const putsBefore = objects.puts.filter((key) => key.startsWith('chunks/')).length;
    const second = await capture(store, [1, 2, 9, 3], 'images/b.manifest.json', 'b');
    expect(second.uploadedChunks).toBe(1);
    expect(second.reusedChunks).toBe(3);
    expect(second.uploadedBytes).toBe(CHUNK);
    expect(objects.puts.filter((key) => key.startsWith('chunks/')).length - putsBefore).toBe(1);
    const stats = await store.stats();
    expect(stats).toMatchObject({ manifests: 2, chunks: 4, logicalBytes: 7 * CHUNK, uniqueBytes: 4 * CHUNK, dedupRatio: '1.75' });
  });

  it('keeps account-scoped chunks apart from storage-wide ones', async () => {
    const objects = createMemoryObjects();
    const shared = createChunkStore(memoryDisk(objects));
    const scoped = createChunkStore(memoryDisk(objects), { scope: { kind: 'account', accountId: '../../evil/..' } });
    await capture(shared, [1], 'images/s.manifest.json', 's');
    const pending = await capture(scoped, [1], 'images/t.manifest.json', 't');
    expect(pending.uploadedChunks).toBe(1);
    const keys = [...objects.objects.keys()].filter((key) => key.includes('/chunks/'));
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^accounts\/~[0-9a-f]{32}\/chunks\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
    const bytes = await assemble(CHUNK, scoped.readImage(pending.manifest, { leaseId: 'r' }));
    expect(bytes.equals(block(1))).toBe(true);
  });

  it('takes unchanged chunks from the base image and checks they are still stored', async () => {
    const { objects, store } = setup();
    const base = await capture(store, [1, 2, 0, 3], 'images/base.manifest.json', 'base');
    const ids = [1, 7, 0, 3];
    const unchanged = new Set([0, 2, 3]);
    const pending = await store.writeImage(diskChunks(ids, { unchanged }), diskInfo(ids, 'cp-1'), { leaseId: 'inc', base: base.manifest });
    expect(pending.uploadedChunks).toBe(1);
    expect(pending.manifest.chunks[0]).toEqual(base.manifest.chunks[0]);
    expect(pending.manifest.chunks[2]).toBeNull();
    await pending.commit('images/inc.manifest.json');
    const bytes = await assemble(4 * CHUNK, store.readImage(pending.manifest, { leaseId: 'r' }));
    expect(bytes.equals(diskBytes(ids))).toBe(true);

    // a base chunk that vanished: NOT_FOUND, nothing committed, the lease dropped
    objects.objects.delete(chunkKey({ kind: 'storage' }, sha256(block(3))));
    const error = await failure(
      store.writeImage(diskChunks(ids, { unchanged }), diskInfo(ids, 'cp-1'), { leaseId: 'inc2', base: base.manifest }),
    );
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toMatch(/base image/);
    expect(objects.objects.has('chunk-leases/inc2.json')).toBe(false);
  });

  it('proves the base chunks present by one read of the base manifest after the lease, not a stat each', async () => {
    const objects = createMemoryObjects();
    const requests: string[] = [];
    const driver = memoryStorageDriver(objects);
    const counted: StorageDriver = {
      ...driver,
      stat: (key) => (requests.push(`stat ${key}`), driver.stat(key)),
      get: (key, options) => (requests.push(`get ${key}`), driver.get(key, options)),
      put: (key, body, options) => (requests.push(`put ${key}`), driver.put(key, body, options)),
    };
    const store = createChunkStore(wrapStorageDriver(counted, { retries: { attempts: 1 } }), { sweepPollMs: 1 });
    const baseKey = 'images/base.manifest.json';
    const base = await capture(store, [1, 2, 0, 3, 4], baseKey, 'base');
    const ids = [1, 7, 0, 3, 4];
    const unchanged = new Set([0, 2, 3, 4]);
    requests.length = 0;
    const pending = await store.writeImage(diskChunks(ids, { unchanged }), diskInfo(ids, 'cp-1'), {
      leaseId: 'inc',
      base: base.manifest,
      baseKey,
    });
    const lease = requests.indexOf('put chunk-leases/inc.json');
    expect(requests.indexOf(`get ${baseKey}`)).toBeGreaterThan(lease); // read after the lease is written
    const seven = chunkKey({ kind: 'storage' }, sha256(block(7)));
    const checked = (r: string) => (r.startsWith('stat chunks/') || r.startsWith('put chunks/')) && !r.endsWith(seven);
    expect(requests.filter(checked)).toEqual([]); // only the new chunk 7 is looked at
    // it changed since the checkpoint: put without a stat first (the storage wrapper checks the put after it)
    expect(requests.find((r) => r.endsWith(seven))).toBe(`put ${seven}`);
    expect(requests.filter((r) => r.startsWith('get images/'))).toEqual([`get ${baseKey}`]);
    expect(pending.uploadedChunks).toBe(1);
    expect(pending.manifest.chunks.filter((_, i) => unchanged.has(i))).toEqual(base.manifest.chunks.filter((_, i) => unchanged.has(i)));

    // a full read (the dedup-only path) of the same disk: the base's chunks are neither checked nor uploaded
    requests.length = 0;
    const full = await store.writeImage(diskChunks(ids), diskInfo(ids), { leaseId: 'full', base: base.manifest, baseKey });
    expect(requests.filter(checked)).toEqual([]);
    // a full read stats its data chunks (dedup): chunk 7 is stored already, and not put again
    expect(requests.filter((r) => r.endsWith(seven))).toEqual([`stat ${seven}`]);
    expect(full.manifest.chunks).toEqual(pending.manifest.chunks);

    // the base deleted before the lease: each chunk is checked, and a chunk only it named is missing
    await store.deleteManifest(baseKey);
    objects.objects.delete(chunkKey({ kind: 'storage' }, sha256(block(4))));
    requests.length = 0;
    const error = await failure(
      store.writeImage(diskChunks(ids, { unchanged }), diskInfo(ids, 'cp-1'), { leaseId: 'inc2', base: base.manifest, baseKey }),
    );
    expect(error.code).toBe('NOT_FOUND');
    expect(requests.filter(checked).length).toBeGreaterThanOrEqual(1);

    // an unchanged chunk is refused from a read that is not incremental, base or not
    const broke = await failure(store.writeImage(diskChunks(ids, { unchanged }), diskInfo(ids), { leaseId: 'x', base: base.manifest }));
    expect(broke.code).toBe('CAPTURE_FAILED');
    const badKey = await failure(
      store.writeImage(diskChunks(ids), diskInfo(ids), { leaseId: 'y', base: base.manifest, baseKey: 'chunks/x' }),
    );
    expect(badKey.fields.map((f) => f.path)).toContain('baseKey');
  });

  it('refuses an incremental read without a base, and a base of another chunk size', async () => {
    const { store } = setup();
    const error = await failure(store.writeImage(diskChunks([1]), diskInfo([1], 'cp-1'), { leaseId: 'x' }));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.fields.map((f) => f.path)).toContain('base');
    const base = (await capture(store, [1])).manifest;
    const other = await failure(
      store.writeImage(diskChunks([1]), diskInfo([1], 'cp'), { leaseId: 'y', base: { ...base, chunkSizeBytes: 2 * CHUNK } }),
    );
    expect(other.fields.map((f) => f.path)).toContain('base.chunkSizeBytes');
  });

  it('refuses a chunk source that skips, repeats or stops early (CAPTURE_FAILED) and leaves no lease', async () => {
    const { objects, store } = setup();
    async function* skipping() {
      const all = diskChunks([1, 2, 3]);
      for await (const chunk of all) if (chunk.index !== 1) yield chunk;
    }
    expect((await failure(store.writeImage(skipping(), diskInfo([1, 2, 3]), { leaseId: 's' }))).code).toBe('CAPTURE_FAILED');
    expect((await failure(store.writeImage(diskChunks([1, 2]), diskInfo([1, 2, 3]), { leaseId: 't' }))).code).toBe('CAPTURE_FAILED');
    expect([...objects.objects.keys()].filter((key) => key.startsWith('chunk-leases/'))).toEqual([]);
  });

  it('a failed write throws at once even when the storage is down and its lease cannot be dropped (it expires)', async () => {
    const objects = createMemoryObjects();
    let dead = false;
    const down = createChunkStore(
      memoryDisk(objects, {
        // Once a chunk's put has failed, every later operation (the lease's delete among them) hangs, as on a dead gateway.
        delay: () => (dead ? new Promise<void>(() => undefined) : Promise.resolve()),
        failPut: (key) => key.startsWith('chunks/') && (dead = true),
      }),
      { parallel: 1, sleep: () => Promise.resolve() },
    );
    const error = await failure(down.writeImage(diskChunks([1, 2, 3]), diskInfo([1, 2, 3]), { leaseId: 'dead-gw' }));
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(objects.objects.has(KEY)).toBe(false);
  });

  it('cover rounds batch the chunks: few lease parts, and every stored chunk is named by one', async () => {
    // Uploads take a while, so the source fills every slot and waits; lease parts land at once.
    const { objects, store } = setup(
      { parallel: 4 },
      { delay: async (operation, key) => void (operation === 'put' && key.startsWith('chunks/') && (await ticks(40))) },
    );
    const parts: string[][] = [];
    objects.afterPut = (key, data) => {
      if (key.startsWith('chunk-leases/parts/batch/')) parts.push((JSON.parse(data.toString('utf8')) as { digests: string[] }).digests);
    };
    const ids = Array.from({ length: 24 }, (_, i) => i + 1);
    const pending = await store.writeImage(diskChunks(ids), diskInfo(ids), { leaseId: 'batch' });
    await pending.commit(KEY);
    const named = new Set(parts.flat());
    for (const chunk of pending.manifest.chunks) expect(named.has(chunk!.sha256)).toBe(true);
    // The first chunk's round, then one per `parallel` chunks (a round per stored chunk made 13).
    expect(parts.map((part) => part.length)).toEqual([1, 4, 4, 4, 4, 4, 3]);
  });

  it("a write and a read listen to the caller's signal once, however many requests they have in flight, and not after they are over", async () => {
    const objects = createMemoryObjects();
    const memory = memoryStorageDriver(objects, {
      delay: async (operation, key) => void (operation === 'put' && key.startsWith('chunks/') && (await ticks(40))),
    });
    // As the S3 driver does: every request listens to the signal it was given until it is over.
    const listen = async <T>(signal: AbortSignal | undefined, request: () => Promise<T>): Promise<T> => {
      const onAbort = () => undefined;
      signal?.addEventListener('abort', onAbort);
      try {
        await ticks(20);
        return await request();
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    };
    const listening: StorageDriver = {
      ...memory,
      put: (key, body, options) => listen(options?.signal, () => memory.put(key, body, options)),
      get: (key, options) => listen(options?.signal, () => memory.get(key, options)),
    };
    const store = createChunkStore(wrapStorageDriver(listening, { retries: { attempts: 1 } }), { sweepPollMs: 1, parallel: 16 });
    const caller = new AbortController();
    const warnings: string[] = [];
    const onWarning = (warning: Error) => void warnings.push(warning.name);
    process.on('warning', onWarning);
    let most = 0;
    const count = () => void (most = Math.max(most, getEventListeners(caller.signal, 'abort').length));
    objects.afterPut = count;
    try {
      const ids = Array.from({ length: 40 }, (_, i) => i + 1);
      const pending = await store.writeImage(diskChunks(ids), diskInfo(ids), { leaseId: 'listeners', signal: caller.signal });
      await pending.commit(KEY);
      expect(most).toBe(1);
      expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
      most = 0;
      let read = 0;
      for await (const chunk of store.readImage(pending.manifest, { leaseId: 'reader', signal: caller.signal })) {
        count();
        read += chunk.bytes.length;
      }
      expect(read).toBe(40 * CHUNK);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(most).toBe(1);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  it('a cover round whose lease write fails fails the write (STORAGE_UNAVAILABLE), commits nothing and drops the lease', async () => {
    const objects = createMemoryObjects();
    let leasePuts = 0;
    const store = createChunkStore(
      memoryDisk(objects, {
        // The preparation's lease write succeeds; the first cover round's (the first part) fails.
        failPut: (key) => key === 'chunk-leases/parts/round/0.json' && ++leasePuts === 1,
      }),
      { parallel: 2, sweepPollMs: 1 },
    );
    const error = await failure(store.writeImage(diskChunks([1, 2, 3]), diskInfo([1, 2, 3]), { leaseId: 'round' }));
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect([...objects.objects.keys()].filter((key) => key.endsWith('.manifest.json') || key.startsWith('chunk-leases/'))).toEqual([]);
    // The chunks it stored are not named by anything: a collection removes them.
    expect((await store.collectGarbage()).referenced).toBe(0);
    expect(chunkKeys(objects)).toEqual([]);
  });

  it('resumes: a second capture after an interrupted one uploads only the missing chunks', async () => {
    const objects = createMemoryObjects();
    let puts = 0;
    const flaky = createChunkStore(memoryDisk(objects, { failPut: (key) => key.startsWith('chunks/') && ++puts === 5 }), { parallel: 1 });
    const ids = [1, 2, 3, 4, 5, 6, 7, 8];
    const error = await failure(flaky.writeImage(diskChunks(ids), diskInfo(ids), { leaseId: 'run-1' }));
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(chunkKeys(objects)).toHaveLength(4);
    expect(objects.objects.has(KEY)).toBe(false);

    const store = createChunkStore(memoryDisk(objects));
    const retry = await store.writeImage(diskChunks(ids), diskInfo(ids), { leaseId: 'run-2' });
    expect(retry.uploadedChunks).toBe(4);
    expect(retry.reusedChunks).toBe(4);
    await retry.commit(KEY);
    expect((await assemble(8 * CHUNK, store.readImage(retry.manifest, { leaseId: 'r' }))).equals(diskBytes(ids))).toBe(true);
  });

  it('holds at most `parallel` chunks besides the one being read (backpressure), uploading up to `parallel` at once', async () => {
    const objects = createMemoryObjects();
    let inflight = 0;
    let maxInflight = 0;
    let released = 0;
    const slow: MemoryClientOptions = {
      delay: async () => {
        inflight++;
        maxInflight = Math.max(maxInflight, inflight);
        await ticks(5);
        inflight--;
      },
    };
    objects.afterPut = (key) => {
      if (key.startsWith('chunks/')) released++;
    };
    const store = createChunkStore(memoryDisk(objects, slow), { parallel: 3 });
    const ids = Array.from({ length: 24 }, (_, i) => i + 1);
    let maxHeld = 0;
    const pending = await store.writeImage(
      diskChunks(ids, { onYield: (index) => (maxHeld = Math.max(maxHeld, index - released)) }),
      diskInfo(ids),
      { leaseId: 'bp' },
    );
    expect(pending.uploadedChunks).toBe(24);
    // chunk `index` is being read: all before it are uploaded except at most `parallel`
    expect(maxHeld).toBeLessThanOrEqual(3);
    expect(maxHeld).toBeGreaterThanOrEqual(2);
    expect(maxInflight).toBeGreaterThanOrEqual(2);
  });

  it('goes on reading while the lease naming new chunks is being written', async () => {
    const objects = createMemoryObjects();
    const driver = memoryStorageDriver(objects);
    let leaseWrites = 0;
    let writing = false;
    const slowLeases: StorageDriver = {
      ...driver,
      async put(key, body, options) {
        if (!key.startsWith('chunk-leases/')) {
          await ticks(30); // uploads take a while, lease writes longer
          return driver.put(key, body, options);
        }
        leaseWrites++;
        writing = true;
        await ticks(40);
        writing = false;
        return driver.put(key, body, options);
      },
    };
    const store = createChunkStore(wrapStorageDriver(slowLeases, { retries: { attempts: 1 } }), { parallel: 4, sweepPollMs: 1 });
    const ids = Array.from({ length: 16 }, (_, i) => i + 1);
    const readDuringCover: number[] = [];
    const onYield = (index: number) => {
      if (writing && leaseWrites > 1) readDuringCover.push(index);
    };
    const pending = await store.writeImage(diskChunks(ids, { onYield }), diskInfo(ids), { leaseId: 'pipe' });
    expect(pending.uploadedChunks).toBe(16);
    expect(readDuringCover.length).toBeGreaterThan(0);
  });

  it('starts uploading with the first chunk, without waiting for a batch to fill', async () => {
    const { objects, store } = setup({ parallel: 4 });
    const ids = [1, 2, 3, 4, 5];
    let firstStoredBeforeSecond: boolean | null = null;
    async function* slowSource() {
      for await (const chunk of diskChunks(ids)) {
        if (chunk.index === 1) {
          await ticks(50); // the source reads the next chunk slowly
          firstStoredBeforeSecond = objects.objects.has(chunkKey({ kind: 'storage' }, sha256(block(1))));
        }
        yield chunk;
      }
    }
    const pending = await store.writeImage(slowSource(), diskInfo(ids), { leaseId: 'eager' });
    expect(pending.uploadedChunks).toBe(5);
    // with no upload running, the first chunk was covered and stored while the second was read
    expect(firstStoredBeforeSecond).toBe(true);
    await pending.commit(KEY);
    expect((await assemble(5 * CHUNK, store.readImage(pending.manifest, { leaseId: 'r' }))).equals(diskBytes(ids))).toBe(true);
  });

  it('uploads a chunk while the lease naming it is still being written (no upload waits for a cover)', async () => {
    const objects = createMemoryObjects();
    const driver = memoryStorageDriver(objects);
    const slowLeases: StorageDriver = {
      ...driver,
      async put(key, body, options) {
        if (key.startsWith('chunk-leases/')) await ticks(40);
        return driver.put(key, body, options);
      },
    };
    const leased = () => objects.objects.get('chunk-leases/side.json')?.data.toString('utf8') ?? '';
    const storedBeforeLeased: boolean[] = [];
    objects.afterPut = (key) => {
      if (key.startsWith('chunks/')) storedBeforeLeased.push(!leased().includes(key.split('/').at(-1)!));
    };
    const store = createChunkStore(wrapStorageDriver(slowLeases, { retries: { attempts: 1 } }), { parallel: 4, sweepPollMs: 1 });
    const ids = [1, 2, 3, 4, 5, 6];
    const pending = await store.writeImage(diskChunks(ids), diskInfo(ids), { leaseId: 'side' });
    expect(storedBeforeLeased).toHaveLength(6);
    expect(storedBeforeLeased.every(Boolean)).toBe(true);
    await pending.commit(KEY);
    expect((await assemble(6 * CHUNK, store.readImage(pending.manifest, { leaseId: 'r' }))).equals(diskBytes(ids))).toBe(true);
  });

  it('uploads a chunk again when a collection ran between storing it and the lease naming it, and commits only present chunks', async () => {
    const objects = createMemoryObjects();
    let leasePuts = 0;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let gated = false;
    const writer = createChunkStore(
      memoryDisk(objects, {
        delay: async (operation, key) => {
          // The round's lease write (its part: the preparation wrote only the head) waits until the test lets it land.
          if (operation === 'put' && key === 'chunk-leases/parts/late/0.json' && ++leasePuts === 1) {
            gated = true;
            await gate;
          }
        },
      }),
      { parallel: 2, sweepPollMs: 1 },
    );
    const collector = createChunkStore(memoryDisk(objects), { sweepPollMs: 1 });
    const ids = [7];
    const writing = writer.writeImage(diskChunks(ids), diskInfo(ids), { leaseId: 'late' });
    const chunk = chunkKey({ kind: 'storage' }, sha256(block(7)));
    while (!(gated && objects.objects.has(chunk))) await ticks(1);
    // The chunk is stored, its lease does not name it yet: a whole collection runs and deletes it.
    const report = await collector.collectGarbage();
    expect(report.deleted).toBe(1);
    expect(objects.objects.has(chunk)).toBe(false);
    openGate();
    const pending = await writing;
    expect(objects.objects.has(chunk)).toBe(true); // uploaded again from the bytes it still held
    expect(pending.uploadedChunks).toBe(2);
    await pending.commit(KEY);
    expect((await collector.collectGarbage()).deleted).toBe(0);
    expect((await assemble(CHUNK, collector.readImage(pending.manifest, { leaseId: 'r' }))).equals(diskBytes(ids))).toBe(true);
  });

  it('checks the unchanged chunks of an incremental capture many at once, not `parallel` at a time', async () => {
    const objects = createMemoryObjects();
    let inflight = 0;
    let maxInflight = 0;
    const slow: MemoryClientOptions = {
      delay: async () => {
        inflight++;
        maxInflight = Math.max(maxInflight, inflight);
        await ticks(5);
        inflight--;
      },
    };
    const store = createChunkStore(memoryDisk(objects, slow), { parallel: 2 });
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    const base = await capture(store, ids, 'images/base.manifest.json', 'base');
    maxInflight = 0;
    const unchanged = new Set(ids.keys());
    unchanged.delete(39);
    const next = [...ids.slice(0, 39), 99];
    const pending = await store.writeImage(diskChunks(next, { unchanged }), diskInfo(next, 'cp-1'), {
      leaseId: 'inc',
      base: base.manifest,
    });
    expect(pending.uploadedChunks).toBe(1);
    expect(pending.manifest.chunks.slice(0, 39)).toEqual(base.manifest.chunks.slice(0, 39));
    // more stats at once than upload slots, and still bounded (8 per slot, the slots, the lease)
    expect(maxInflight).toBeGreaterThan(2);
    expect(maxInflight).toBeLessThanOrEqual(8 * 2 + 2 + 1);
  });

  it('reports progress in bytes of the disk and bytes uploaded', async () => {
    const { store } = setup();
    const seen: { bytesDone: number; bytesTotal: number; uploadedBytes: number }[] = [];
    await store.writeImage(diskChunks([1, 0, 2]), diskInfo([1, 0, 2]), { leaseId: 'p', onProgress: (p) => seen.push(p) });
    expect(seen.at(-1)).toEqual({ bytesDone: 3 * CHUNK, bytesTotal: 3 * CHUNK, uploadedBytes: 2 * CHUNK });
    expect(seen.map((p) => p.bytesDone)).toEqual([...seen.map((p) => p.bytesDone)].sort((a, b) => a - b));
  });

  it('refuses manifest keys outside the layout rules and commits only once', async () => {
    const { store } = setup();
    const pending = await store.writeImage(diskChunks([1]), diskInfo([1]), { leaseId: 'k' });
    for (const key of [
      'images/a.qcow2',
      'chunks/aa/x.manifest.json',
      'chunk-leases/a.manifest.json',
      '../a.manifest.json',
      '/abs.manifest.json',
    ]) {
      expect((await failure(pending.commit(key))).code).toBe('VALIDATION_FAILED');
    }
    await pending.commit(KEY);
    expect((await failure(pending.commit(KEY))).code).toBe('INVALID_STATE');
  });

  it('commit with releaseLater resolves once the manifest is stored; the lease goes in the background and settled() waits for it', async () => {
    const objects = createMemoryObjects();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const disk = memoryDisk(objects, {
      delay: async (operation, key) => {
        if (operation === 'delete' && key.startsWith('chunk-leases/')) await gate;
      },
    });
    const store = createChunkStore(disk, { sweepPollMs: 1 });
    const pending = await store.writeImage(diskChunks([1, 2]), diskInfo([1, 2]), { leaseId: 'later' });
    await pending.commit(KEY, { releaseLater: true });
    expect(objects.objects.has(KEY)).toBe(true);
    expect(objects.objects.has('chunk-leases/later.json')).toBe(true); // still being deleted
    let settled = false;
    const waiting = pending.settled().then(() => (settled = true));
    await ticks(20);
    expect(settled).toBe(false);
    open();
    await waiting;
    expect([...objects.objects.keys()].filter((key) => key.startsWith('chunk-leases/'))).toEqual([]);
    expect((await failure(pending.commit(KEY))).code).toBe('INVALID_STATE');
    // Without the option, commit itself waits for the lease; settled() is then already done.
    const second = await store.writeImage(diskChunks([3]), diskInfo([3]), { leaseId: 'now' });
    await second.commit('images/acct/two.manifest.json');
    expect([...objects.objects.keys()].filter((key) => key.startsWith('chunk-leases/'))).toEqual([]);
    await second.settled();
  });

  it('prepareImage: writes the lease and proves the base before the chunks exist; write then stores as writeImage does', async () => {
    const { objects, store } = setup();
    const baseKey = 'images/base.manifest.json';
    const base = await capture(store, [1, 2, 0, 3], baseKey, 'base');
    const prepared = store.prepareImage({ leaseId: 'prep', base: base.manifest, baseKey });
    await ticks(50);
    // Before any chunk: the lease (its head, and a part) names the base's chunks, and the base manifest was read after it.
    expect(objects.objects.has('chunk-leases/prep.json')).toBe(true);
    const part = JSON.parse(objects.objects.get('chunk-leases/parts/prep/0.json')!.data.toString('utf8')) as { digests: string[] };
    expect(part.digests).toContain(sha256(block(3)));
    const ids = [1, 7, 0, 3];
    const pending = await prepared.write(diskChunks(ids, { unchanged: new Set([0, 2, 3]) }), diskInfo(ids, 'cp-1'));
    expect(pending.uploadedChunks).toBe(1);
    await pending.commit('images/inc.manifest.json');
    expect([...objects.objects.keys()].filter((key) => key.startsWith('chunk-leases/'))).toEqual([]);
    const bytes = await assemble(4 * CHUNK, store.readImage(pending.manifest, { leaseId: 'r' }));
    expect(bytes.equals(diskBytes(ids))).toBe(true);
    // Once only.
    expect((await failure(prepared.write(diskChunks(ids), diskInfo(ids)))).code).toBe('INVALID_STATE');
  });

  it('prepareImage: abandoned before any chunk, or refused by the source info, leaves no lease; bad options write nothing', async () => {
    const { objects, store } = setup();
    const leases = () => [...objects.objects.keys()].filter((key) => key.startsWith('chunk-leases/'));
    const prepared = store.prepareImage({ leaseId: 'gone' });
    await prepared.abandon();
    expect(leases()).toEqual([]);
    expect((await failure(prepared.write(diskChunks([1]), diskInfo([1])))).code).toBe('INVALID_STATE');

    // An incremental source with no base: refused at write, the lease dropped.
    const refused = store.prepareImage({ leaseId: 'refused' });
    const error = await failure(refused.write(diskChunks([1]), diskInfo([1], 'cp-1')));
    expect(error.fields.map((f) => f.path)).toContain('base');
    expect(leases()).toEqual([]);
    await refused.abandon(); // harmless after a failed write

    // Options are checked at once, before anything is written.
    const puts = objects.puts.length;
    expect(() => store.prepareImage({ leaseId: '../x' })).toThrow(InstanceImagesError);
    expect(() => store.prepareImage({ leaseId: 'ok', baseKey: 'images/x.manifest.json' })).toThrow(/baseKey/);
    expect(objects.puts.length).toBe(puts);
  });

  it('validates its options and lease ids', async () => {
    const objects = createMemoryObjects();
    const bad = (options: ChunkStoreOptions) => {
      try {
        createChunkStore(memoryDisk(objects), options);
      } catch (error) {
        return (error as InstanceImagesError).fields.map((f) => f.path);
      }
      return [];
    };
    expect(bad({ parallel: 0 })).toEqual(['parallel']);
    expect(bad({ scope: { kind: 'account', accountId: 'a\u0000b' } })).toEqual(['scope']);
    expect(bad({ manifestPrefix: '../x/' })).toEqual(['manifestPrefix']);
    expect(bad({ codec: 'zstd' })).toEqual(isZstdAvailable() ? [] : ['codec']);
    const { store } = setup();
    expect((await failure(store.writeImage(diskChunks([1]), diskInfo([1]), { leaseId: '../x' }))).code).toBe('VALIDATION_FAILED');
  });
});

describe('chunk store: reads into the pooled buffers', () => {
  /** The memory driver with a `getBytes` that records which keys it read and into which buffers. */
  function withGetBytes() {
    const objects = createMemoryObjects();
    const driver = memoryStorageDriver(objects);
    const reads: { key: string; into: Buffer }[] = [];
    const streamed: string[] = [];
    const get = driver.get.bind(driver);
    const raw: StorageDriver = {
      ...driver,
      get: (key, options) => {
        streamed.push(key);
        return get(key, options);
      },
      async getBytes(key, into) {
        reads.push({ key, into });
        const object = objects.objects.get(key);
        if (!object) return null;
        if (object.data.length > into.length)
          throw new InstanceImagesError('VALIDATION_FAILED', `${key} is larger than the buffer`, {
            fields: [{ path: 'key', message: 'too large' }],
          });
        object.data.copy(into);
        return object.data.length;
      },
    };
    const store = createChunkStore(wrapStorageDriver(raw, { retries: { attempts: 1 } }), { sweepPollMs: 1, parallel: 2 });
    return { objects, store, reads, streamed };
  }

  it("reads every chunk with the driver's getBytes into the pooled buffers, checked as before", async () => {
    const { store, reads, streamed } = withGetBytes();
    const ids = [1, 2, 0, 3, 4, 5, 6, 7, 8];
    const pending = await capture(store, ids);
    const bytes = await assemble(ids.length * CHUNK, store.readImage(pending.manifest, { leaseId: 'r' }));
    expect(bytes.equals(diskBytes(ids))).toBe(true);
    const chunkReads = reads.filter((r) => r.key.startsWith('chunks/'));
    expect(chunkReads.map((r) => r.key)).toEqual(
      ids.filter((id) => id !== 0).map((id) => chunkKey({ kind: 'storage' }, sha256(block(id)))),
    );
    expect(streamed.filter((key) => key.startsWith('chunks/'))).toEqual([]);
    // Each read is given a buffer of the pool cut to the chunk's length.
    expect(chunkReads.every((r) => r.into.length === CHUNK)).toBe(true);
  });

  it('a chunk stored longer than its length, or with a changed byte, is CHECKSUM_MISMATCH through getBytes too', async () => {
    const { objects, store } = withGetBytes();
    const pending = await capture(store, [1, 2]);
    const key = chunkKey({ kind: 'storage' }, sha256(block(2)));
    const original = objects.objects.get(key)!.data;
    objects.objects.set(key, { data: Buffer.concat([original, Buffer.from('x')]), modifiedAt: new Date() });
    const longer = await failure(assemble(2 * CHUNK, store.readImage(pending.manifest, { leaseId: 'r1' })));
    expect({ code: longer.code, key: longer.details.key }).toEqual({ code: 'CHECKSUM_MISMATCH', key });
    const changed = Buffer.from(original);
    changed[7] = changed[7]! ^ 1;
    objects.objects.set(key, { data: changed, modifiedAt: new Date() });
    const flipped = await failure(assemble(2 * CHUNK, store.readImage(pending.manifest, { leaseId: 'r2' })));
    expect({ code: flipped.code, key: flipped.details.key }).toEqual({ code: 'CHECKSUM_MISMATCH', key });
    expect(objects.objects.has('chunk-leases/r2.json')).toBe(false);
  });
});

describe('chunk store: damage', () => {
  it('catches a corrupted chunk: readImage fails with CHECKSUM_MISMATCH and verify names the images it breaks', async () => {
    const { objects, store } = setup();
    await capture(store, [1, 2], 'images/a.manifest.json', 'a');
    await capture(store, [2, 3], 'images/b.manifest.json', 'b');
    const key = chunkKey({ kind: 'storage' }, sha256(block(2)));
    const damaged = Buffer.from(objects.objects.get(key)!.data);
    damaged[100] = damaged[100]! ^ 0xff;
    objects.objects.set(key, { data: damaged, modifiedAt: new Date() });

    const manifest = (await store.readManifest('images/a.manifest.json'))!;
    const error = await failure(assemble(2 * CHUNK, store.readImage(manifest, { leaseId: 'r' })));
    expect(error.code).toBe('CHECKSUM_MISMATCH');
    expect(error.details.key).toBe(key);
    expect(objects.objects.has('chunk-leases/r.json')).toBe(false);

    const report = await store.verify();
    expect(report.checked).toBe(3);
    expect(report.missing).toEqual([]);
    expect(report.corrupt).toEqual([{ sha256: sha256(block(2)), key, manifests: ['images/a.manifest.json', 'images/b.manifest.json'] }]);
  });

  it('reports a missing chunk: readImage fails with NOT_FOUND, verify lists it as missing', async () => {
    const { objects, store } = setup();
    const pending = await capture(store, [1, 2]);
    const key = chunkKey({ kind: 'storage' }, sha256(block(1)));
    objects.objects.delete(key);
    const error = await failure(assemble(2 * CHUNK, store.readImage(pending.manifest, { leaseId: 'r' })));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.details).toMatchObject({ key, index: 0 });
    const report = await store.verify();
    expect(report.missing).toEqual([{ sha256: sha256(block(1)), key, manifests: [KEY] }]);
    expect(report.checked).toBe(1);
  });

  it('refuses to deploy from an image whose manifest was deleted meanwhile (NOT_FOUND)', async () => {
    const { store } = setup();
    const pending = await capture(store, [1]);
    await store.deleteManifest(KEY);
    const error = await failure(assemble(CHUNK, store.readImage(pending.manifest, { leaseId: 'r', manifestKey: KEY })));
    expect(error.code).toBe('NOT_FOUND');
  });

  it('stops reading and drops its lease when the consumer leaves early', async () => {
    const { objects, store } = setup({ parallel: 2 });
    const pending = await capture(store, [1, 2, 3, 4, 5, 6]);
    const gets = objects.puts.length;
    for await (const chunk of store.readImage(pending.manifest, { leaseId: 'early' })) {
      expect(chunk.offset).toBe(0);
      break;
    }
    expect(objects.puts.length).toBeGreaterThan(gets); // the lease was written
    expect(objects.objects.has('chunk-leases/early.json')).toBe(false);
  });
});

describe('chunk store: codecs', () => {
  // Node 20 has no zstd in zlib, Node ≥ 22.15 has: each runtime runs the branch it can, none is skipped.
  it('zstd: compressible chunks stored with zstd and a mixed store read where zlib has zstd; elsewhere a zstd chunk fails typed', async () => {
    if (!isZstdAvailable()) {
      const { objects, store } = setup();
      const pending = await capture(store, [1]);
      const key = chunkKey({ kind: 'storage' }, sha256(block(1)));
      objects.objects.set(key, { data: Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]), modifiedAt: new Date() });
      const error = await failure(assemble(CHUNK, store.readImage(pending.manifest, { leaseId: 'r' })));
      expect(error.code).toBe('INVALID_STATE');
      expect(error.details).toMatchObject({ codec: 'zstd', reason: 'zstd-unavailable' });
      expect(error.message).toMatch(/Node\.js 22\.15/);
      return;
    }
    const objects = createMemoryObjects();
    const plain = createChunkStore(memoryDisk(objects));
    const zstd = createChunkStore(memoryDisk(objects), { codec: 'zstd' });
    await capture(plain, [1], 'images/plain.manifest.json', 'p');
    const random = randomBytes(CHUNK);
    async function* source() {
      yield* diskChunks([1, 2]);
      yield { kind: 'data' as const, index: 2, offset: 2 * CHUNK, length: CHUNK, bytes: random, sha256: sha256(random) };
    }
    const pending = await zstd.writeImage(source(), diskInfo([1, 2, 3]), { leaseId: 'z' });
    expect(pending.manifest.chunks[0]).toMatchObject({ codec: 'none', storedBytes: CHUNK }); // deduped against the plain one
    expect(pending.manifest.chunks[1]!.codec).toBe('zstd');
    expect(pending.manifest.chunks[1]!.storedBytes).toBeLessThan(CHUNK / 10);
    expect(pending.manifest.chunks[2]).toMatchObject({ codec: 'none', storedBytes: CHUNK }); // incompressible: stored as is
    expect(pending.uploadedBytes).toBe(pending.manifest.chunks[1]!.storedBytes + CHUNK);
    await pending.commit('images/z.manifest.json');
    const bytes = await assemble(3 * CHUNK, plain.readImage(pending.manifest, { leaseId: 'r' }));
    expect(bytes.equals(Buffer.concat([diskBytes([1, 2]), random]))).toBe(true);
    expect(await zstd.verify()).toMatchObject({ checked: 3, corrupt: [], missing: [] });

    // a damaged zstd chunk is CHECKSUM_MISMATCH, not a crash
    const key = chunkKey({ kind: 'storage' }, sha256(block(2)));
    const damaged = Buffer.from(objects.objects.get(key)!.data);
    damaged[damaged.length - 5] = damaged[damaged.length - 5]! ^ 0xff;
    objects.objects.set(key, { data: damaged, modifiedAt: new Date() });
    expect((await failure(assemble(3 * CHUNK, zstd.readImage(pending.manifest, { leaseId: 'r2' })))).code).toBe('CHECKSUM_MISMATCH');
  });
});
