/**
 * Reading a chunked image for a deploy (the reader of the GC protocol): under a lease, each data
 * chunk fetched `parallel` ahead, decoded and checked against its digest.
 * @module
 */
import { InstanceImagesError, isInstanceImagesError, toInstanceImagesError } from '../errors';
import { decodeChunk } from './codec';
import { followSignal, readObject, throwIfAborted, type ChunkContext } from './context';
import { checkLeaseId, chunkKey, checkManifestKey } from './keys';
import { ChunkLease } from './lease';
import { chunkLength, type ChunkManifest } from './manifest';
import { sharedBufferPool, type BufferPool } from '../util/buffer-pool';

/** Options of {@link ChunkStore.readImage}. */
export interface ReadImageOptions {
  /** The lease this read holds while it runs. */
  leaseId: string;
  /**
   * The key the manifest was read from (addition). When given, the read checks under its lease
   * that the manifest still exists (NOT_FOUND otherwise), so an image deleted meanwhile is not
   * deployed from chunks that garbage collection may be removing.
   */
  manifestKey?: string;
  signal?: AbortSignal;
  /** Data bytes delivered, of all data bytes of the image. */
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
}

/** One data range of the image. */
export interface ImageChunk {
  offset: number;
  bytes: Buffer;
  /**
   * Hands `bytes` back for a later chunk once the consumer is done with them (it must not touch
   * them afterwards). Optional: a chunk never released is garbage collected.
   */
  release(): void;
}

/** Fetches, decodes and checks one chunk. */
async function fetchChunk(
  ctx: ChunkContext,
  manifest: ChunkManifest,
  index: number,
  sha256: string,
  signal: AbortSignal,
  buffers: BufferPool,
): Promise<ImageChunk> {
  const key = chunkKey(manifest.scope, sha256);
  const length = chunkLength(manifest.virtualSizeBytes, manifest.chunkSizeBytes, index);
  const target = buffers.take(manifest.chunkSizeBytes, false);
  let stored: Buffer | null;
  try {
    stored = await readObject(ctx, key, { maxBytes: length, signal, into: target });
  } catch (error) {
    if (isInstanceImagesError(error, 'VALIDATION_FAILED'))
      throw new InstanceImagesError('CHECKSUM_MISMATCH', `The stored chunk ${key} is damaged: it is larger than its ${length} bytes`, {
        details: { key, sha256, index },
      });
    throw error;
  }
  if (stored === null) {
    throw new InstanceImagesError('NOT_FOUND', `Chunk ${index} of the image (${key}) is missing from the storage`, {
      details: { key, sha256, index },
    });
  }
  const bytes = await decodeChunk(stored, { sha256, length, key });
  // Stored as is, the chunk's bytes are a view of `target`; decompressed, they are a buffer of their own.
  if (bytes.buffer !== target.buffer) buffers.give(target);
  return {
    offset: index * manifest.chunkSizeBytes,
    bytes,
    release: bytes.buffer === target.buffer ? buffers.releaser(target) : () => undefined,
  };
}

/** The reader of {@link ChunkStore.readImage}. */
export async function* readImage(ctx: ChunkContext, manifest: ChunkManifest, options: ReadImageOptions): AsyncGenerator<ImageChunk> {
  checkLeaseId(options.leaseId);
  const manifestKey = options.manifestKey === undefined ? null : checkManifestKey(options.manifestKey);
  const entries: { index: number; sha256: string }[] = [];
  let bytesTotal = 0;
  manifest.chunks.forEach((chunk, index) => {
    if (chunk === null) return;
    entries.push({ index, sha256: chunk.sha256 });
    bytesTotal += chunkLength(manifest.virtualSizeBytes, manifest.chunkSizeBytes, index);
  });
  const lease = new ChunkLease(ctx, options.leaseId, manifest.scope);
  const { controller: stop, detach } = followSignal(options.signal, ctx.parallel);
  const queue: Promise<ImageChunk>[] = [];
  // The chunks fetched ahead and those the consumer still writes; more are allocated.
  const buffers = sharedBufferPool(manifest.chunkSizeBytes, 2 * ctx.parallel + 4);
  try {
    lease.add(entries.map((entry) => entry.sha256));
    lease.startRefreshing();
    await lease.cover(options.signal); // W1, Wm
    if (manifestKey !== null && (await ctx.disk.stat(manifestKey)) === null)
      throw new InstanceImagesError('NOT_FOUND', `The chunked image ${manifestKey} was deleted`, { details: { key: manifestKey } });
    let next = 0;
    let bytesDone = 0;
    const refill = () => {
      while (queue.length < ctx.parallel && next < entries.length) {
        const entry = entries[next++]!;
        const fetched = fetchChunk(ctx, manifest, entry.index, entry.sha256, stop.signal, buffers);
        fetched.catch(() => undefined); // awaited in order below; a later failure must not go unhandled
        queue.push(fetched);
      }
    };
    refill();
    while (queue.length > 0) {
      throwIfAborted(options.signal, 'The chunked read');
      const chunk = await queue.shift()!;
      lease.assertHeld();
      refill();
      bytesDone += chunk.bytes.length;
      yield chunk;
      options.onProgress?.({ bytesDone, bytesTotal });
    }
  } catch (error) {
    if (options.signal?.aborted) throw new InstanceImagesError('CANCELLED', 'The chunked read was cancelled', { cause: error });
    throw toInstanceImagesError(error, 'STORAGE_UNAVAILABLE', 'Reading the chunked image failed');
  } finally {
    stop.abort();
    detach();
    await Promise.allSettled(queue);
    await lease.release();
  }
}
