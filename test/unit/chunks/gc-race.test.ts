/**
 * The GC protocol under contention: many captures (some abandoned), deploys and deletes run at
 * once with garbage collections on one shared in-memory storage, every storage operation delayed
 * by a seeded random number of event-loop turns. Every put and delete is checked as it happens:
 * no manifest may ever name a missing chunk. When everything is done, one more collection must
 * leave exactly the chunks the remaining manifests name.
 *
 * Some captures are incremental: they reuse the chunks of a committed parent manifest, which the
 * deleter may delete (and a collection may sweep) while they run. They prove those chunks present
 * by re-reading the parent manifest once their lease is covered (W3b), or check each chunk when it
 * is gone.
 *
 * The same schedules with the protocol broken on purpose (captures that do not wait for the sweep
 * marker; a collector that reads manifests before leases; captures that trust a parent manifest
 * read before their lease, served from a cache) must produce violations: the test proves it can
 * fail.
 *
 * Nothing here depends on real time: storage delays and sweep polls count event-loop turns drawn
 * from the seed, and the clock advances by one millisecond per reading, so a loaded machine runs
 * the very same schedules.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createChunkStore, parseManifest, SWEEP_MARKER_KEY, type ChunkStore } from '../../../src/chunks';
import { SWEEP_SETTLE_MS } from '../../../src/chunks/lease';
import { chunkDigestOfKey, chunkKey } from '../../../src/chunks/keys';
import { InstanceImagesError, isInstanceImagesError } from '../../../src/errors';
import type { StorageDriver } from '../../../src/ports/storage-driver';
import { wrapStorageDriver } from '../../../src/storage/disk';
import {
  createMemoryObjects,
  diskChunks,
  diskInfo,
  memoryStorageDriver,
  seededRandom,
  ticks,
  type MemoryClientOptions,
  type MemoryObjects,
} from '../../support/memory-storage';

type Variant =
  | 'protocol'
  | 'writers skip the sweep marker'
  | 'collector reads manifests before leases'
  | 'writers trust a cached parent manifest'
  | 'writers see every collection under one id'
  | 'collector ignores lease parts'
  | 'collector skips its settle wait';

const isManifest = (key: string) => key.endsWith('.manifest.json');

/** Watches every change of the shared storage: a manifest must never name a missing chunk. */
function watchInvariant(objects: MemoryObjects): { violations: string[]; named: () => Set<string> } {
  const manifests = new Map<string, string[]>();
  const violations: string[] = [];
  const named = () => new Set([...manifests.values()].flat());
  objects.afterPut = (key, data) => {
    if (!key.endsWith('.manifest.json')) return;
    const manifest = parseManifest(data);
    const keys = manifest.chunks.flatMap((chunk) => (chunk ? [chunkKey(manifest.scope, chunk.sha256)] : []));
    for (const chunk of keys) if (!objects.objects.has(chunk)) violations.push(`manifest ${key} committed naming missing ${chunk}`);
    manifests.set(key, keys);
  };
  objects.afterDelete = (key) => {
    if (key.endsWith('.manifest.json')) manifests.delete(key);
    else if (chunkDigestOfKey(key) !== null) {
      for (const [manifest, keys] of manifests) if (keys.includes(key)) violations.push(`chunk ${key} deleted while ${manifest} names it`);
    }
  };
  return { violations, named };
}

/**
 * A collector whose manifest reads are served as they were when it listed the chunks (G1), i.e.
 * before it read the leases: the order the protocol forbids.
 */
function manifestsBeforeLeases(driver: StorageDriver, objects: MemoryObjects): StorageDriver {
  let snapshot: Map<string, { data: Buffer; modifiedAt: Date }> | null = null;
  return {
    ...driver,
    async list(options = {}) {
      if (options.prefix === 'chunks/' && !options.cursor)
        snapshot = new Map([...objects.objects].filter(([key]) => isManifest(key)).map(([key, value]) => [key, { ...value }]));
      const page = await driver.list(options);
      if (snapshot === null || options.prefix !== 'images/') return page;
      const items = [...page.items.filter((item) => !isManifest(item.key))];
      for (const [key, value] of snapshot) items.push({ key, size: value.data.length, modifiedAt: value.modifiedAt });
      return { items: items.sort((a, b) => (a.key < b.key ? -1 : 1)), nextCursor: null };
    },
    async get(key, options) {
      const old = snapshot?.get(key);
      if (snapshot !== null && isManifest(key)) {
        if (!old) throw new InstanceImagesError('NOT_FOUND', `${key} not found`);
        return Readable.from([old.data]);
      }
      return driver.get(key, options);
    },
  };
}

/**
 * A writer whose manifest reads are cached: once read, a manifest is served as it was, even after
 * it was deleted. Its proof of a parent's chunks (W3b) then rests on a read made before its lease.
 */
function cachedManifests(driver: StorageDriver): StorageDriver {
  const cache = new Map<string, Buffer>();
  return {
    ...driver,
    async get(key, options) {
      if (!isManifest(key)) return driver.get(key, options);
      let data = cache.get(key);
      if (data === undefined) {
        const parts: Buffer[] = [];
        for await (const part of await driver.get(key, options)) parts.push(part as Buffer);
        data = Buffer.concat(parts);
        cache.set(key, data);
      }
      return Readable.from([data]);
    },
  };
}

/**
 * A writer that reads every sweep marker with the same id: it still waits while a collection runs,
 * but cannot tell that one started and ended between storing a chunk and its lease naming it.
 */
function oneSweepId(driver: StorageDriver): StorageDriver {
  return {
    ...driver,
    async get(key, options) {
      if (key !== SWEEP_MARKER_KEY) return driver.get(key, options);
      const parts: Buffer[] = [];
      for await (const part of await driver.get(key, options)) parts.push(part as Buffer);
      const marker = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
      return Readable.from([Buffer.from(JSON.stringify({ ...marker, gcId: 'always-the-same' }))]);
    },
  };
}

interface ScheduleResult {
  violations: string[];
  leftover: string[];
  unnamed: string[];
  committed: number;
  /** Incremental captures committed. */
  incremental: number;
  /** Incremental captures committed although their parent was deleted while they ran. */
  parentDeleted: number;
  /** Chunks a writer checked again because a collection started between storing them and their lease naming them. */
  rechecked: number;
  /** Cover rounds whose lease part took longer than COVER_READ_BOUND_MS, so the marker was read again after it. */
  readAgain: number;
}

async function runSchedule(seed: number, variant: Variant): Promise<ScheduleResult> {
  const objects = createMemoryObjects();
  const invariant = watchInvariant(objects);
  const random = seededRandom(seed);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  let clock = Date.UTC(2026, 0, 1);
  const now = () => new Date((clock += 1));
  // A lease write is now and then slow (a busy storage): a capture's chunks are stored before the
  // lease naming them lands, and a whole collection can run in between.
  // Now and then one is slower than a cover round may wait for (COVER_READ_BOUND_MS: about as many
  // clock readings), so the round reads the marker again after it.
  const leaseDelay = () => {
    const draw = random();
    return draw < 0.05 ? 3000 : draw < 0.25 ? 160 : 4;
  };
  const client = (extra: MemoryClientOptions = {}, maxTicks = 4) =>
    memoryStorageDriver(objects, {
      delay: (operation, key) =>
        ticks(Math.floor(random() * (operation === 'put' && key.startsWith('chunk-leases/') ? leaseDelay() : maxTicks))),
      now,
      ...extra,
    });
  let rechecked = 0;
  let readAgain = 0;
  const logger = {
    debug: (message: string) => void (message.startsWith('A lease part took longer') && (readAgain += 1)),
    info: (message: string) => void (message.startsWith('A chunk garbage collection started while') && (rechecked += 1)),
    warn: () => undefined,
    error: () => undefined,
  };
  /**
   * Waits until the clock (milliseconds per reading) has moved `ms`, moving it one per turn itself:
   * a collection's settle wait (SWEEP_SETTLE_MS) then spans at least as many clock readings as a
   * writer may count between sending a marker read and storing the lease part beside it.
   */
  const sleep = async (ms: number): Promise<void> => {
    const end = clock + ms;
    do {
      await ticks(1 + Math.floor(random() * 3));
      clock += 1;
    } while (clock < end);
  };
  const storeOf = (driver: StorageDriver, skipSettle = false): ChunkStore =>
    createChunkStore(wrapStorageDriver(driver, { retries: { attempts: 1 } }), {
      logger,
      parallel: 2,
      sweepPollMs: 1,
      sleep: (ms) => (skipSettle && ms === SWEEP_SETTLE_MS ? ticks(1) : sleep(ms)),
      now,
      manifestPrefix: 'images/',
    });
  const writerClient = () => {
    if (variant === 'writers skip the sweep marker') return client({ hidden: (key) => key === SWEEP_MARKER_KEY });
    if (variant === 'writers see every collection under one id') return oneSweepId(client());
    return variant === 'writers trust a cached parent manifest' ? cachedManifests(client()) : client();
  };
  const gcDriver =
    variant === 'collector reads manifests before leases'
      ? manifestsBeforeLeases(client({}, 12), objects)
      : variant === 'collector ignores lease parts'
        ? client({ hidden: (key) => key.startsWith('chunk-leases/parts/') }, 12)
        : client({}, 12);
  const gc = storeOf(gcDriver, variant === 'collector skips its settle wait');

  const committed: string[] = [];
  /** The blocks of each committed image (its disk), for incremental captures from it. */
  const disks = new Map<string, number[]>();
  let running = 0;
  let captures = 0;
  let incremental = 0;
  let parentDeleted = 0;
  const newBlock = () => (random() < 0.15 ? 0 : 1 + Math.floor(random() * 5));
  /** An incremental capture of a committed image's disk with some chunks rewritten, or null. */
  const fromParent = async (store: ChunkStore) => {
    if (committed.length === 0 || random() < 0.4) return null;
    const key = pick(committed);
    const manifest = await store.readManifest(key);
    if (manifest === null) return null;
    const ids = [...disks.get(key)!];
    const unchanged = new Set<number>();
    // Rewritten chunks are mostly the image's own, so deleting it leaves chunks only its children name.
    ids.forEach((_, index) => (random() < 0.6 ? unchanged.add(index) : (ids[index] = 6 + Math.floor(random() * 60))));
    await ticks(Math.floor(random() * 30)); // the capture starts its read a while after choosing its base
    return { key, manifest, ids, unchanged };
  };
  const writer = async (id: number) => {
    const store = storeOf(writerClient());
    for (let round = 0; round < 8; round++) {
      const parent = await fromParent(store);
      const ids = parent?.ids ?? Array.from({ length: 4 }, newBlock);
      let pending;
      try {
        pending = parent
          ? await store.writeImage(diskChunks(ids, { unchanged: parent.unchanged }), diskInfo(ids, 'checkpoint'), {
              leaseId: `w${id}-${round}`,
              base: parent.manifest,
              baseKey: parent.key,
            })
          : await store.writeImage(diskChunks(ids), diskInfo(ids), { leaseId: `w${id}-${round}` });
      } catch (error) {
        // The parent and a chunk only it named went before the lease: the capture reads fully on retry.
        if (parent && isInstanceImagesError(error, 'NOT_FOUND')) continue;
        throw error;
      }
      await ticks(Math.floor(random() * 6));
      if (random() < 0.35) await pending.abandon();
      else {
        const key = `images/w${id}-${round}.manifest.json`;
        await pending.commit(key);
        committed.push(key);
        disks.set(key, ids);
        captures++;
        if (parent) incremental++;
        if (parent && !objects.objects.has(parent.key)) parentDeleted++;
      }
    }
  };
  const deleter = async () => {
    const store = storeOf(client());
    while (running > 0) {
      await ticks(1 + Math.floor(random() * 20));
      if (committed.length > 2 && random() < 0.5)
        await store.deleteManifest(committed.splice(Math.floor(random() * committed.length), 1)[0]!);
    }
  };
  const reader = async (id: number) => {
    const store = storeOf(client());
    for (let n = 0; running > 0; n++) {
      await ticks(1 + Math.floor(random() * 10));
      if (committed.length === 0) continue;
      const key = pick(committed);
      const manifest = await store.readManifest(key);
      if (manifest === null) continue;
      try {
        for await (const chunk of store.readImage(manifest, { leaseId: `r${id}-${n}`, manifestKey: key }))
          expect(chunk.bytes.length).toBeGreaterThan(0);
      } catch (error) {
        if (!isInstanceImagesError(error, 'NOT_FOUND')) throw error;
        if (objects.objects.has(key)) invariant.violations.push(`deploy of ${key} found a chunk missing: ${(error as Error).message}`);
      }
    }
  };
  const collector = async () => {
    while (running > 0) {
      await gc.collectGarbage();
      await ticks(Math.floor(random() * 10));
    }
  };
  const writers = Array.from({ length: 5 }, (_, i) => i);
  running = writers.length;
  const done = writers.map((i) => writer(i).finally(() => (running -= 1)));
  await Promise.all([...done, deleter(), reader(1), reader(2), collector()]);
  // Quiet now: one more collection must leave exactly what the manifests name.
  await gc.collectGarbage();
  const stored = [...objects.objects.keys()].filter((key) => chunkDigestOfKey(key) !== null);
  const named = invariant.named();
  return {
    violations: invariant.violations,
    leftover: [
      ...[...objects.objects.keys()].filter((key) => key.startsWith('chunk-leases/')),
      ...(objects.objects.has(SWEEP_MARKER_KEY) && !objects.objects.get(SWEEP_MARKER_KEY)!.data.toString('utf8').includes('"finishedAt"')
        ? [`${SWEEP_MARKER_KEY} (not finished)`]
        : []),
    ],
    unnamed: stored.filter((key) => !named.has(key)),
    committed: captures,
    incremental,
    parentDeleted,
    rechecked,
    readAgain,
  };
}

const SEEDS = [1, 2, 3, 4, 5, 6];

describe('chunk GC under concurrent captures, deploys and deletes (seeded schedules)', () => {
  /** Per seed, the incremental captures whose parent was deleted while they ran (each test runs its own schedule when it needs one). */
  const parentsDeleted = new Map<number, number>();
  const parentsDeletedOf = async (seed: number): Promise<number> => {
    if (!parentsDeleted.has(seed)) parentsDeleted.set(seed, (await runSchedule(seed, 'protocol')).parentDeleted);
    return parentsDeleted.get(seed) ?? 0;
  };
  it.each(SEEDS)(
    'seed %i: no manifest ever names a missing chunk, and every unreferenced chunk is collected',
    async (seed) => {
      const result = await runSchedule(seed, 'protocol');
      expect(result.violations).toEqual([]);
      expect(result.unnamed).toEqual([]);
      expect(result.leftover).toEqual([]);
      expect(result.committed).toBeGreaterThan(10);
      expect(result.incremental).toBeGreaterThan(3);
      parentsDeleted.set(seed, result.parentDeleted);
    },
    60_000,
  );

  it('the schedules include incremental captures whose parent was deleted while they ran', async () => {
    let total = 0;
    for (const seed of SEEDS) total += await parentsDeletedOf(seed);
    expect(total).toBeGreaterThan(0);
  }, 60_000);

  it('the schedules include chunks stored before a collection started and leased after it (checked again), and cover rounds whose marker read came too early for their lease part (read again)', async () => {
    let rechecked = 0;
    let readAgain = 0;
    for (const seed of SEEDS) {
      const result = await runSchedule(seed, 'protocol');
      rechecked += result.rechecked;
      readAgain += result.readAgain;
    }
    expect(rechecked).toBeGreaterThan(0);
    expect(readAgain).toBeGreaterThan(0);
  }, 60_000);

  it('the same seed makes the same schedule', async () => {
    const [a, b] = [await runSchedule(3, 'protocol'), await runSchedule(3, 'protocol')];
    expect(b).toEqual(a);
  });

  // A broken protocol loses a chunk only when a capture or a commit lands in the wrong window, so
  // not every schedule shows it: run schedules until one does. For most breaks a third to a half
  // of them do; writers that see every collection under one id lose a chunk only when a whole
  // collection runs between a chunk's store and its cover round's marker read, which seed 41 is the
  // first to do (seeds are deterministic: the loop always stops there).
  it.each([
    'writers skip the sweep marker',
    'collector reads manifests before leases',
    'writers trust a cached parent manifest',
    'writers see every collection under one id',
    'collector ignores lease parts',
    'collector skips its settle wait',
  ] as const)(
    'planted break (%s): schedules produce violations',
    async (variant) => {
      let violations: string[] = [];
      for (let seed = 1; seed <= 120 && violations.length === 0; seed++) violations = (await runSchedule(seed, variant)).violations;
      expect(violations[0]).toMatch(/deleted while .* names it|committed naming missing|found a chunk missing/);
    },
    180_000,
  );
});
