/**
 * An in-memory object store behind the StorageDriver port, for unit tests of the chunk store: one
 * shared map of objects that several driver "clients" use at once, each optionally with random
 * (seeded) delays, injected failures, or a view that hides keys, and hooks that see every change.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { InstanceImagesError } from '../../src/errors';
import type { CapturedChunk } from '../../src/ports/hypervisor-driver';
import type { StorageDriver, StoredObject } from '../../src/ports/storage-driver';
import { wrapStorageDriver, type StorageDisk } from '../../src/storage/disk';

/** The objects of a shared in-memory storage and who changed them. */
export interface MemoryObjects {
  objects: Map<string, { data: Buffer; modifiedAt: Date }>;
  /** Keys put, in order. */
  puts: string[];
  /** Keys deleted, in order. */
  deletes: string[];
  /** Called after each put took effect. */
  afterPut: ((key: string, data: Buffer) => void) | null;
  /** Called after each delete took effect (only when the key existed). */
  afterDelete: ((key: string) => void) | null;
}

/** A fresh shared object map. */
export function createMemoryObjects(): MemoryObjects {
  return { objects: new Map(), puts: [], deletes: [], afterPut: null, afterDelete: null };
}

/** How one client sees the shared objects. */
export interface MemoryClientOptions {
  /** Awaited before every operation takes effect (random delays make random interleavings), with the operation and key (the list's prefix). */
  delay?: (operation: 'put' | 'get' | 'stat' | 'list' | 'delete', key: string) => Promise<void>;
  /** Throws STORAGE_UNAVAILABLE for a put of this key when it returns true. */
  failPut?: (key: string) => boolean;
  /** Keys this client cannot see (reads return nothing): a planted protocol break. */
  hidden?: (key: string) => boolean;
  /** The clock of modifiedAt. */
  now?: () => Date;
}

async function collect(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(Buffer.isBuffer(part) ? part : Buffer.from(part as Uint8Array));
  return Buffer.concat(parts);
}

/** A StorageDriver over the shared objects. */
export function memoryStorageDriver(store: MemoryObjects, options: MemoryClientOptions = {}): StorageDriver {
  const delay = options.delay ?? (async () => undefined);
  const hidden = options.hidden ?? (() => false);
  const now = options.now ?? (() => new Date());
  const visible = (key: string) => (hidden(key) ? undefined : store.objects.get(key));
  return {
    name: 'memory',
    capabilities: { shared: true, pathAccess: false },
    async put(key, body) {
      const data = await collect(body);
      await delay('put', key);
      if (options.failPut?.(key)) throw new InstanceImagesError('STORAGE_UNAVAILABLE', `injected failure writing ${key}`);
      store.objects.set(key, { data, modifiedAt: now() });
      store.puts.push(key);
      store.afterPut?.(key, data);
      return { size: data.length };
    },
    async get(key, getOptions = {}) {
      await delay('get', key);
      const object = visible(key);
      if (!object) throw new InstanceImagesError('NOT_FOUND', `${key} not found`);
      const start = getOptions.range?.start ?? 0;
      const end = getOptions.range?.end === undefined ? object.data.length : getOptions.range.end + 1;
      return Readable.from([Buffer.from(object.data.subarray(start, end))]);
    },
    async stat(key): Promise<StoredObject | null> {
      await delay('stat', key);
      const object = visible(key);
      return object ? { key, size: object.data.length, modifiedAt: object.modifiedAt } : null;
    },
    async list(listOptions = {}) {
      await delay('list', listOptions.prefix ?? '');
      const prefix = listOptions.prefix ?? '';
      const after = listOptions.cursor ?? null;
      const keys = [...store.objects.keys()]
        .filter((key) => key.startsWith(prefix) && !hidden(key) && (after === null || key > after))
        .sort();
      const limit = listOptions.limit ?? 1000;
      const page = keys.slice(0, limit);
      const items = page.map((key) => {
        const object = store.objects.get(key)!;
        return { key, size: object.data.length, modifiedAt: object.modifiedAt };
      });
      return { items, nextCursor: keys.length > limit ? (page.at(-1) ?? null) : null };
    },
    async delete(key) {
      await delay('delete', key);
      if (store.objects.delete(key)) {
        store.deletes.push(key);
        store.afterDelete?.(key);
      }
    },
    async freeSpace() {
      return null;
    },
    async health() {
      return { ok: true, message: 'in memory' };
    },
    async listIncomplete() {
      return [];
    },
    async abortIncomplete() {},
  };
}

/** A wrapped in-memory storage (no retry delays). */
export function memoryDisk(store: MemoryObjects, options: MemoryClientOptions = {}): StorageDisk {
  return wrapStorageDriver(memoryStorageDriver(store, options), { retries: { attempts: 1 } });
}

/** A small, fast PRNG (mulberry32) for seeded schedules. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Waits `ticks` turns of the event loop. */
export async function ticks(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** The test chunk size (the smallest allowed). */
export const CHUNK = 64 * 1024;

/** The bytes of a test block: 0 = zeroes; otherwise distinct content per id. */
export function block(id: number, length = CHUNK): Buffer {
  if (id === 0) return Buffer.alloc(length);
  const seed = createHash('sha256').update(`block ${id}`).digest();
  const bytes = Buffer.alloc(length);
  for (let offset = 0; offset < length; offset += seed.length) seed.copy(bytes, offset);
  return bytes;
}

/** SHA-256 hex. */
export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/**
 * The chunks of a disk made of blocks (`ids[i]` is chunk i; 0 reads as zeroes), as a capture hands
 * them over. `unchanged` indexes are reported unchanged; `zeroAsData` sends zero blocks as data.
 */
export async function* diskChunks(
  ids: number[],
  options: { unchanged?: Set<number>; zeroAsData?: boolean; lastLength?: number; onYield?: (index: number) => void } = {},
): AsyncGenerator<CapturedChunk> {
  for (let index = 0; index < ids.length; index++) {
    const length = index === ids.length - 1 && options.lastLength !== undefined ? options.lastLength : CHUNK;
    const offset = index * CHUNK;
    options.onYield?.(index);
    if (options.unchanged?.has(index)) yield { kind: 'unchanged', index, offset, length };
    else if (ids[index] === 0 && !options.zeroAsData) yield { kind: 'zero', index, offset, length };
    else {
      const bytes = block(ids[index]!, length);
      yield { kind: 'data', index, offset, length, bytes, sha256: sha256(bytes) };
    }
  }
}

/** The source info of such a disk. */
export function diskInfo(ids: number[], incrementalSince: string | null = null, lastLength = CHUNK) {
  return { virtualSizeBytes: (ids.length - 1) * CHUNK + (ids.length === 0 ? 0 : lastLength), chunkSizeBytes: CHUNK, incrementalSince };
}

/** Reassembles a disk from the data ranges of a read (zero ranges stay zero). */
export async function assemble(virtualSizeBytes: number, chunks: AsyncIterable<{ offset: number; bytes: Buffer }>): Promise<Buffer> {
  const disk = Buffer.alloc(virtualSizeBytes);
  for await (const chunk of chunks) chunk.bytes.copy(disk, chunk.offset);
  return disk;
}

/** The disk a list of blocks makes. */
export function diskBytes(ids: number[], lastLength = CHUNK): Buffer {
  return Buffer.concat(ids.map((id, index) => block(id, index === ids.length - 1 ? lastLength : CHUNK)));
}
