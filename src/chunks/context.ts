/**
 * What every part of the chunk store shares: the disk, the checked options, and small object I/O.
 * @module
 */
import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import { InstanceImagesError, isInstanceImagesError, validationFailed, type FieldIssue } from '../errors';
import type { Logger } from '../ports/logger';
import type { StorageDisk } from '../storage/disk';
import { normalizeStoragePrefix } from '../storage/keys';
import { isZstdAvailable } from './codec';
import { ChunkScopeSchema, type ChunkCodec, type ChunkScope } from './manifest';

/** Options of {@link createChunkStore}. */
export interface ChunkStoreOptions {
  /** Where new chunks go and which chunks dedup against each other. @default storage-wide */
  scope?: ChunkScope;
  /** How new chunks are stored; `zstd` only where `node:zlib` has it (else VALIDATION_FAILED). @default 'none' */
  codec?: ChunkCodec;
  /**
   * Concurrent chunk uploads/downloads; also the chunks held in memory (8 × 4 MiB by default). 8
   * measured faster than 4 on radosgw, where each 4 MiB put waits on the OSD: first capture of
   * 1 GiB 16.5 s against 18.3 s, recapture of 64 MiB 2.5 s against 2.9 s, deploy 1.04× the files
   * layout's against 1.16–1.19×. @default 8
   */
  parallel?: number;
  /** A lease not refreshed for this long is expired: GC ignores and deletes it. @default 600000 (10 min) */
  leaseTtlMs?: number;
  /** A sweep marker not refreshed for this long is stale: writers stop waiting for it. @default 300000 (5 min) */
  sweepTtlMs?: number;
  /** How often a writer or reader looks again at a fresh sweep marker (addition). @default 1000 */
  sweepPollMs?: number;
  /**
   * Where garbage collection, verify and stats look for manifests (addition): a key prefix such as
   * `images/`. Every manifest must lie below it. @default '' (the whole storage)
   */
  manifestPrefix?: string;
  logger?: Logger;
  /** The clock (leases and markers carry its time). */
  now?: () => Date;
  /**
   * How a writer or reader waits `sweepPollMs` for a sweep to end (addition; tests pass one that
   * counts event-loop turns, so that seeded schedules do not depend on the machine's load).
   * @default a timer
   */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The checked options and the disk. */
export interface ChunkContext {
  disk: StorageDisk;
  scope: ChunkScope;
  codec: ChunkCodec;
  parallel: number;
  leaseTtlMs: number;
  sweepTtlMs: number;
  sweepPollMs: number;
  manifestPrefix: string;
  logger: Logger;
  now: () => Date;
  /**
   * Milliseconds on a clock that only moves forward, for durations (the injected `now` when there
   * is one, so that tests stay on their clock; else `performance.now()`).
   */
  elapsed: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function positiveInteger(fields: FieldIssue[], path: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    fields.push({ path, message: `must be an integer from 1 to ${max}` });
    return fallback;
  }
  return value;
}

/** Checks the options. @throws VALIDATION_FAILED naming each bad option. */
export function chunkContext(disk: StorageDisk, options: ChunkStoreOptions): ChunkContext {
  const fields: FieldIssue[] = [];
  let scope: ChunkScope = { kind: 'storage' };
  if (options.scope !== undefined) {
    const parsed = ChunkScopeSchema.safeParse(options.scope);
    if (parsed.success) scope = parsed.data;
    else
      fields.push({
        path: 'scope',
        message: 'must be { kind: "storage" } or { kind: "account", accountId } (1–200 characters, no control characters)',
      });
  }
  const codec = options.codec ?? 'none';
  if (codec !== 'none' && codec !== 'zstd') fields.push({ path: 'codec', message: 'must be "none" or "zstd"' });
  else if (codec === 'zstd' && !isZstdAvailable())
    fields.push({ path: 'codec', message: `zstd needs Node.js 22.15 or later (node:zlib of ${process.version} has none)` });
  const day = 24 * 3600 * 1000;
  const parallel = positiveInteger(fields, 'parallel', options.parallel, 8, 64);
  const leaseTtlMs = positiveInteger(fields, 'leaseTtlMs', options.leaseTtlMs, 600_000, day);
  const sweepTtlMs = positiveInteger(fields, 'sweepTtlMs', options.sweepTtlMs, 300_000, day);
  const sweepPollMs = positiveInteger(fields, 'sweepPollMs', options.sweepPollMs, 1000, day);
  let manifestPrefix = '';
  try {
    manifestPrefix = normalizeStoragePrefix(options.manifestPrefix);
  } catch {
    fields.push({ path: 'manifestPrefix', message: 'must be a storage key prefix (relative, no "." or ".." segments)' });
  }
  if (fields.length > 0) throw validationFailed(fields, 'The chunk store options');
  return {
    disk,
    scope,
    codec,
    parallel,
    leaseTtlMs,
    sweepTtlMs,
    sweepPollMs,
    manifestPrefix,
    logger: options.logger ?? silent,
    now: options.now ?? (() => new Date()),
    elapsed: options.now ? () => (options.now as () => Date)().getTime() : () => performance.now(),
    sleep: options.sleep ?? sleep,
  };
}

/** Writes a small object in one put (atomic on every driver). */
export async function putBuffer(ctx: ChunkContext, key: string, bytes: Buffer, signal?: AbortSignal): Promise<void> {
  await ctx.disk.putBytes(key, bytes, signal ? { signal } : {});
}

/**
 * Reads a whole object, or null when it does not exist.
 * @throws VALIDATION_FAILED when it is larger than `maxBytes`.
 */
export async function readObject(
  ctx: ChunkContext,
  key: string,
  options: {
    maxBytes: number;
    signal?: AbortSignal;
    /** At least `maxBytes` long: the bytes are read into it ({@link StorageDisk.getBytes}) and a view of it is returned. */
    into?: Buffer;
  },
): Promise<Buffer | null> {
  // Into a buffer of the caller's: in one read where the driver has one (S3: a plain GET per chunk).
  if (options.into)
    return ctx.disk.getBytes(key, options.into.subarray(0, options.maxBytes), options.signal ? { signal: options.signal } : {});
  let stream: Readable;
  try {
    stream = await ctx.disk.get(key, options.signal ? { signal: options.signal } : {});
  } catch (error) {
    if (isInstanceImagesError(error, 'NOT_FOUND')) return null;
    throw error;
  }
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const part of stream) {
      const buffer = Buffer.isBuffer(part) ? part : Buffer.from(part as Uint8Array);
      size += buffer.length;
      if (size > options.maxBytes) {
        throw new InstanceImagesError(
          'VALIDATION_FAILED',
          `The object ${key} is larger than the ${options.maxBytes} bytes allowed for it`,
          {
            fields: [{ path: 'key', message: `holds more than ${options.maxBytes} bytes` }],
          },
        );
      }
      parts.push(buffer);
    }
  } catch (error) {
    stream.destroy();
    if (isInstanceImagesError(error)) throw error;
    throw new InstanceImagesError('STORAGE_UNAVAILABLE', `Reading ${key} from the ${ctx.disk.name} storage failed`, { cause: error });
  }
  return Buffer.concat(parts, size);
}

/** Every object below `prefix`, page by page. */
export async function* listAll(
  ctx: ChunkContext,
  prefix: string,
  signal?: AbortSignal,
): AsyncGenerator<{ key: string; size: number; modifiedAt: Date }> {
  let cursor: string | null = null;
  do {
    throwIfAborted(signal);
    const page = await ctx.disk.list({ prefix, cursor, limit: 1000 });
    yield* page.items;
    cursor = page.nextCursor;
  } while (cursor !== null);
}

/** CANCELLED when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'The chunk store operation'): void {
  if (signal?.aborted) throw new InstanceImagesError('CANCELLED', `${what} was cancelled`);
}

/**
 * A controller that follows the caller's `signal` through one listener, with room for a store
 * operation's requests to listen to it: each request listens to the signal it gets (a write's
 * `parallel` uploads with its cover rounds' requests, a read's `parallel` prefetches), beyond the
 * ten listeners per signal Node warns about (MaxListenersExceededWarning), on a signal the caller
 * may also hand to a driver. `detach` removes the listener once the operation is over, so a
 * long-lived caller's signal does not keep it.
 */
export function followSignal(signal: AbortSignal | undefined, parallel: number): { controller: AbortController; detach: () => void } {
  const controller = new AbortController();
  setMaxListeners(4 * parallel + 16, controller.signal);
  if (!signal) return { controller, detach: () => undefined };
  const onAbort = (): void => controller.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return { controller, detach: () => signal.removeEventListener('abort', onAbort) };
}

/** Waits `ms`, or rejects with CANCELLED when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new InstanceImagesError('CANCELLED', 'The chunk store operation was cancelled'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new InstanceImagesError('CANCELLED', 'The chunk store operation was cancelled'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs `task` over `items` with at most `limit` at a time; the first failure stops new ones and is thrown. */
export async function forEachLimit<T>(items: Iterable<T>, limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    for (let next = iterator.next(); !next.done && failure === null; next = iterator.next()) {
      try {
        await task(next.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}
