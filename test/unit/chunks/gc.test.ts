/**
 * Garbage collection of chunks, step by step: what it deletes and keeps, leases (live, expired,
 * large), the sweep marker writers wait for, and the cases where it must stop.
 */
import { describe, expect, it } from 'vitest';
import { createChunkStore, type ChunkStoreOptions } from '../../../src/chunks';
import { chunkContext } from '../../../src/chunks/context';
import { chunkKey } from '../../../src/chunks/keys';
import { ChunkLease } from '../../../src/chunks/lease';
import { InstanceImagesError } from '../../../src/errors';
import {
  block,
  createMemoryObjects,
  diskChunks,
  diskInfo,
  memoryDisk,
  sha256,
  ticks,
  type MemoryObjects,
} from '../../support/memory-storage';

const key = (id: number) => chunkKey({ kind: 'storage' }, sha256(block(id)));
const has = (objects: MemoryObjects, id: number) => objects.objects.has(key(id));
/** The sweep marker, which must be there and finished. */
function finishedMarker(objects: MemoryObjects): { gcId: string; finishedAt: string } {
  const stored = objects.objects.get('chunk-gc/sweep.json');
  expect(stored).toBeDefined();
  const marker = JSON.parse(stored!.data.toString('utf8')) as { gcId: string; finishedAt: string };
  expect(marker.finishedAt).toMatch(/^\d{4}-/);
  return marker;
}

function setup(options: ChunkStoreOptions = {}) {
  const objects = createMemoryObjects();
  let clock = Date.parse('2026-12-03T06:00:00Z');
  const now = () => new Date(clock);
  // One turn per wait: these tests run one thing at a time, so a collection's settle wait
  // (SWEEP_SETTLE_MS, for writers running beside it) need not last.
  const store = createChunkStore(memoryDisk(objects, { now }), {
    now,
    sweepPollMs: 1,
    leaseTtlMs: 60_000,
    sweepTtlMs: 30_000,
    sleep: () => ticks(1),
    ...options,
  });
  return { objects, store, advance: (ms: number) => (clock += ms), now };
}

async function capture(store: ReturnType<typeof setup>['store'], ids: number[], name: string) {
  const pending = await store.writeImage(diskChunks(ids), diskInfo(ids), { leaseId: name });
  await pending.commit(`images/${name}.manifest.json`);
  return pending;
}

async function failure(promise: Promise<unknown>): Promise<InstanceImagesError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(InstanceImagesError);
    return error as InstanceImagesError;
  }
  throw new Error('expected a rejection');
}

describe('chunk garbage collection', () => {
  it('deletes the chunks only a deleted image named, keeps shared ones, and marks its marker finished', async () => {
    const { objects, store } = setup();
    await capture(store, [1, 2, 3], 'a');
    await capture(store, [2, 3, 4], 'b');
    await store.deleteManifest('images/a.manifest.json');

    const dry = await store.collectGarbage({ dryRun: true });
    expect(dry).toEqual({ chunks: 4, referenced: 3, deleted: 1, bytesFreed: block(1).length, leasesExpired: 0 });
    expect(has(objects, 1)).toBe(true);
    expect(objects.puts).not.toContain('chunk-gc/sweep.json'); // a dry run writes nothing

    const report = await store.collectGarbage();
    expect(report).toEqual(dry);
    expect([1, 2, 3, 4].map((id) => has(objects, id))).toEqual([false, true, true, true]);
    expect(objects.puts).toContain('chunk-gc/sweep.json');
    // The marker stays, finished: the id of the newest collection is what writers compare.
    const marker = finishedMarker(objects);
    expect(marker.gcId).toMatch(/^[0-9a-f-]{36}$/);
    await store.collectGarbage();
    expect(finishedMarker(objects).gcId).not.toBe(marker.gcId); // every collection has its own id
    expect(await store.stats()).toMatchObject({ manifests: 1, chunks: 3, dedupRatio: '1.00' });
  });

  it('keeps the chunks of a capture that holds its lease, and collects them once it is abandoned', async () => {
    const { objects, store } = setup();
    const pending = await store.writeImage(diskChunks([1, 2]), diskInfo([1, 2]), { leaseId: 'running' });
    expect((await store.collectGarbage()).deleted).toBe(0);
    expect(has(objects, 1) && has(objects, 2)).toBe(true);
    await pending.abandon();
    expect((await store.collectGarbage()).deleted).toBe(2);
  });

  it('ignores and deletes expired leases (a run that died), and releaseLease drops one at once', async () => {
    const { objects, store, advance } = setup();
    await store.writeImage(diskChunks([1]), diskInfo([1]), { leaseId: 'died' });
    await store.writeImage(diskChunks([2]), diskInfo([2]), { leaseId: 'recovered' });
    await store.releaseLease('recovered');
    expect(objects.objects.has('chunk-leases/recovered.json')).toBe(false);
    expect(await store.collectGarbage()).toMatchObject({ deleted: 1, leasesExpired: 0 });
    advance(60_001);
    expect(await store.collectGarbage()).toMatchObject({ deleted: 1, leasesExpired: 1 });
    expect(objects.objects.has('chunk-leases/died.json')).toBe(false);
  });

  it('rewrites the lease before the manifest only when its refresh is due', async () => {
    const { objects, store, advance } = setup();
    const fresh = await store.writeImage(diskChunks([1, 2]), diskInfo([1, 2]), { leaseId: 'fresh' });
    let mark = objects.puts.length;
    await fresh.commit('images/fresh.manifest.json');
    // Written when its last chunks were covered, naming them all: no second write before W4.
    expect(objects.puts.slice(mark)).toEqual(['images/fresh.manifest.json']);
    expect(objects.objects.has('chunk-leases/fresh.json')).toBe(false);

    const due = await store.writeImage(diskChunks([3]), diskInfo([3]), { leaseId: 'due' });
    advance(25_000); // past a third of the TTL (the timer's period), within three quarters
    mark = objects.puts.length;
    await due.commit('images/due.manifest.json');
    expect(objects.puts.slice(mark)).toEqual(['chunk-leases/due.json', 'images/due.manifest.json']);
    expect(objects.objects.has('chunk-leases/due.json')).toBe(false);
  });

  it('fails a capture whose lease could not be refreshed in time, instead of committing it', async () => {
    const { objects, store, advance } = setup();
    const pending = await store.writeImage(diskChunks([1]), diskInfo([1]), { leaseId: 'slow' });
    advance(50_000); // past three quarters of the lease TTL without a refresh
    const error = await failure(pending.commit('images/slow.manifest.json'));
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.details.reason).toBe('lease-lapsed');
    expect(objects.objects.has('images/slow.manifest.json')).toBe(false);
    await pending.abandon();
  });

  it('reads leases of any size: every part protects its digests', async () => {
    const { objects, store, now } = setup();
    const ctx = chunkContext(memoryDisk(objects, { now }), { now, leaseTtlMs: 60_000 });
    const ids = [1, 2, 3, 4, 5];
    await capture(store, ids, 'a');
    await store.deleteManifest('images/a.manifest.json');
    const lease = new ChunkLease(ctx, 'big', { kind: 'storage' }, 2);
    lease.add(ids.map((id) => sha256(block(id))));
    await lease.cover();
    expect([...objects.objects.keys()].filter((k) => k.startsWith('chunk-leases/parts/big/')).sort()).toEqual([
      'chunk-leases/parts/big/0.json',
      'chunk-leases/parts/big/1.json',
      'chunk-leases/parts/big/2.json',
    ]);
    expect((await store.collectGarbage()).deleted).toBe(0);
    await lease.release();
    expect([...objects.objects.keys()].filter((k) => k.startsWith('chunk-leases/'))).toEqual([]);
    expect((await store.collectGarbage()).deleted).toBe(5);
  });

  it('still honours a lease of format 1 (a head that counts its parts and holds digests) until it expires', async () => {
    const { objects, store, advance, now } = setup();
    await capture(store, [1, 2, 3], 'a');
    await store.deleteManifest('images/a.manifest.json');
    const put = (k: string, body: unknown) => objects.objects.set(k, { data: Buffer.from(JSON.stringify(body)), modifiedAt: now() });
    const at = now().toISOString();
    put('chunk-leases/old.json', {
      format: 1,
      leaseId: 'old',
      scope: { kind: 'storage' },
      refreshedAt: at,
      parts: 1,
      digests: [sha256(block(1))],
    });
    put('chunk-leases/parts/old/0.json', { format: 1, leaseId: 'old', part: 0, writtenAt: at, digests: [sha256(block(2))] });
    const report = await store.collectGarbage();
    expect(report.deleted).toBe(1); // only block 3: the head names block 1, its counted part block 2
    expect([has(objects, 1), has(objects, 2), has(objects, 3)]).toEqual([true, true, false]);
    advance(60_000);
    expect(await store.collectGarbage()).toMatchObject({ deleted: 2, leasesExpired: 1 });
    expect([...objects.objects.keys()].filter((k) => k.startsWith('chunk-leases/'))).toEqual([]);
  });

  it('stops without deleting anything when a part of a live lease cannot be read, and drops the parts of an expired one', async () => {
    const { objects, store, advance, now } = setup();
    await capture(store, [1], 'a');
    await store.deleteManifest('images/a.manifest.json');
    const at = now().toISOString();
    objects.objects.set('chunk-leases/live.json', {
      data: Buffer.from(JSON.stringify({ format: 2, leaseId: 'live', scope: { kind: 'storage' }, refreshedAt: at })),
      modifiedAt: now(),
    });
    objects.objects.set('chunk-leases/parts/live/3.json', { data: Buffer.from('{"format":1,'), modifiedAt: now() });
    const error = await failure(store.collectGarbage());
    expect(error.code).toBe('INVALID_STATE');
    expect(error.message).toContain('chunk-leases/parts/live/3.json');
    expect(has(objects, 1)).toBe(true);
    advance(60_000);
    expect(await store.collectGarbage()).toMatchObject({ deleted: 1, leasesExpired: 1 });
    expect([...objects.objects.keys()].filter((k) => k.startsWith('chunk-leases/'))).toEqual([]);
  });

  it('lets cover rounds write their parts side by side: a slow part does not hold back the next round', async () => {
    const objects = createMemoryObjects();
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const order: string[] = [];
    const disk = memoryDisk(objects, {
      delay: async (operation, k) => {
        if (operation !== 'put' || !k.startsWith('chunk-leases/parts/')) return;
        order.push(`start ${k}`);
        if (k.endsWith('/0.json')) await slow;
        order.push(`end ${k}`);
      },
    });
    const store = createChunkStore(disk, { parallel: 2, sweepPollMs: 1 });
    const writing = store.writeImage(diskChunks([1, 2, 3, 4]), diskInfo([1, 2, 3, 4]), { leaseId: 'side' });
    while (!order.includes('end chunk-leases/parts/side/1.json')) await ticks(1);
    // Part 1 (a later round) landed while part 0 (the first round) still hangs.
    expect(order).not.toContain('end chunk-leases/parts/side/0.json');
    release();
    const pending = await writing;
    await pending.commit('images/side.manifest.json');
    expect([...objects.objects.keys()].filter((k) => k.startsWith('chunk-leases/'))).toEqual([]);
    expect((await store.collectGarbage()).deleted).toBe(0);
  });

  it('makes a capture wait while a fresh sweep marker exists, and ignores a stale one', async () => {
    const { objects, store, advance, now } = setup();
    const marker = { format: 1, gcId: 'other', startedAt: now().toISOString(), refreshedAt: now().toISOString() };
    objects.objects.set('chunk-gc/sweep.json', { data: Buffer.from(JSON.stringify(marker)), modifiedAt: now() });
    let done = false;
    const writing = store.writeImage(diskChunks([1]), diskInfo([1]), { leaseId: 'w' }).then((p) => ((done = true), p));
    await ticks(50);
    expect(done).toBe(false);
    expect(has(objects, 1)).toBe(false); // nothing stat'ed or uploaded while the sweep runs
    expect(objects.objects.has('chunk-leases/w.json')).toBe(true); // but the lease is there (W1 before Wm)
    expect((await failure(store.collectGarbage())).code).toBe('CONFLICT'); // one collection at a time
    advance(30_000); // the marker goes stale
    const pending = await writing;
    expect(has(objects, 1)).toBe(true);
    await pending.abandon();
  });

  it('stops without deleting anything when a manifest cannot be read', async () => {
    const { objects, store } = setup();
    await capture(store, [1], 'a');
    await capture(store, [2], 'b');
    await store.deleteManifest('images/b.manifest.json');
    objects.objects.set('images/broken.manifest.json', { data: Buffer.from('{"format":1'), modifiedAt: new Date() });
    const error = await failure(store.collectGarbage());
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toMatch(/images\/broken\.manifest\.json/);
    expect(has(objects, 2)).toBe(true);
    finishedMarker(objects);
    const verify = await store.verify();
    expect(verify.unreadableManifests.map((m) => m.key)).toEqual(['images/broken.manifest.json']);
    expect((await store.stats()).unreadableManifests).toBe(1);
  });

  it('collects chunks of every scope, by the scope each manifest names', async () => {
    const objects = createMemoryObjects();
    const scoped = createChunkStore(memoryDisk(objects), { scope: { kind: 'account', accountId: 'acct/1' } });
    const shared = createChunkStore(memoryDisk(objects));
    await capture(scoped, [1], 'a');
    await capture(shared, [1], 'b');
    expect((await shared.collectGarbage()).deleted).toBe(0);
    await shared.deleteManifest('images/a.manifest.json');
    expect((await shared.collectGarbage()).deleted).toBe(1);
    expect(has(objects, 1)).toBe(true);
  });
  it('keeps the chunks of a deploy in progress even when its image is deleted meanwhile', async () => {
    const { objects, store } = setup({ parallel: 1 });
    const pending = await capture(store, [1, 2, 3], 'a');
    const reading = store.readImage(pending.manifest, { leaseId: 'deploy', manifestKey: 'images/a.manifest.json' })[Symbol.asyncIterator]();
    expect((await reading.next()).value?.offset).toBe(0);
    await store.deleteManifest('images/a.manifest.json');
    expect((await store.collectGarbage()).deleted).toBe(0);
    const rest: number[] = [];
    for (let next = await reading.next(); !next.done; next = await reading.next()) rest.push(next.value.offset);
    expect(rest).toEqual([65536, 131072]);
    expect(objects.objects.has('chunk-leases/deploy.json')).toBe(false);
    expect((await store.collectGarbage()).deleted).toBe(3);
  });

  it('stops deleting when its sweep marker could not be refreshed in time', async () => {
    const objects = createMemoryObjects();
    let clock = Date.parse('2026-12-03T06:00:00Z');
    const now = () => new Date(clock);
    const store = createChunkStore(memoryDisk(objects, { now }), { now, sweepTtlMs: 30_000, parallel: 1 });
    await capture(store, [1, 2, 3], 'a');
    await store.deleteManifest('images/a.manifest.json');
    objects.afterDelete = (deleted) => {
      if (deleted.startsWith('chunks/')) clock += 25_000; // the first delete takes most of the marker's life
    };
    const error = await failure(store.collectGarbage());
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.details.reason).toBe('marker-lapsed');
    expect(objects.deletes.filter((key) => key.startsWith('chunks/'))).toHaveLength(1);
    finishedMarker(objects);
  });
});
