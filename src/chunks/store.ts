/**
 * The chunk store: chunked images (content-addressed chunks plus a manifest per image) on any
 * storage driver, through its {@link StorageDisk}.
 * @module
 */
import type { CapturedChunk, ChunkSourceInfo } from '../ports/hypervisor-driver';
import type { StorageDisk } from '../storage/disk';
import { readManifestAt } from './catalog';
import { chunkContext, type ChunkStoreOptions } from './context';
import { collectGarbage, type CollectGarbageOptions, type GarbageReport } from './gc';
import { checkLeaseId, checkManifestKey } from './keys';
import { deleteLease } from './lease';
import type { ChunkManifest } from './manifest';
import { readImage, type ImageChunk, type ReadImageOptions } from './read';
import { storeStats, verifyStore, type ChunkStoreStats, type VerifyOptions, type VerifyReport } from './verify';
import { prepareImage, writeImage, type PendingImage, type PreparedImage, type WriteImageOptions } from './write';

/** Chunked images on one storage. */
export interface ChunkStore {
  /**
   * Stores the chunks of a capture: data chunks are uploaded unless present (dedup), zero chunks
   * become null, `unchanged` chunks are taken from `base` (required when info.incrementalSince is
   * set; VALIDATION_FAILED otherwise). The base's chunks are proven present by one read of the base
   * manifest at `baseKey` after the lease is written, else (no `baseKey`, or the base was deleted or
   * changed meanwhile) checked one by one. Holds a lease on every chunk it will name until
   * `commit`/`abandon`. Resumable: a retry skips chunks an interrupted run already stored.
   * At most `parallel` data chunks are held (uploading, or waiting for the lease to name them)
   * besides the one the source is reading; presence checks of unchanged chunks (no bytes held) run
   * up to 8 × `parallel` at once. A chunk is uploaded as soon as it comes, while the lease write that
   * names it runs beside the upload (docs/architecture.md, "Garbage collection").
   * @throws VALIDATION_FAILED (info, base, leaseId), CAPTURE_FAILED (the chunk source broke its
   *   contract), NOT_FOUND (a base chunk is missing), CANCELLED, STORAGE_UNAVAILABLE (retryable).
   */
  writeImage(chunks: AsyncIterable<CapturedChunk>, info: ChunkSourceInfo, options: WriteImageOptions): Promise<PendingImage>;
  /**
   * {@link writeImage} in two halves, for a capture whose chunks come later (addition): checks the
   * options at once (VALIDATION_FAILED), then writes the lease and proves the base in the
   * background while the caller starts its source (a capture: its backup job), so that the first
   * chunk finds them done. Hand the chunks to `write`; if it is never called, or fails, `abandon`
   * drops the lease (call it on every path that does not reach a pending image).
   */
  prepareImage(options: WriteImageOptions): PreparedImage;
  /**
   * Reads and parses a manifest; null when absent.
   * @throws VALIDATION_FAILED (bad key or manifest), CHECKSUM_MISMATCH (its digest is wrong).
   */
  readManifest(key: string): Promise<ChunkManifest | null>;
  /**
   * The data chunks of an image for a deploy, each decompressed and checked against its digest
   * (CHECKSUM_MISMATCH on a mismatch, NOT_FOUND for a missing chunk), prefetched `parallel` ahead,
   * under a lease so GC cannot collect them meanwhile. Zero chunks are left out. Leaving the loop
   * early stops the reads and drops the lease.
   */
  readImage(manifest: ChunkManifest, options: ReadImageOptions): AsyncIterable<ImageChunk>;
  /** Deletes a manifest; idempotent. Its chunks go at the next garbage collection. */
  deleteManifest(key: string): Promise<void>;
  /**
   * Garbage collection (docs/architecture.md, "Chunked layout"). One at a time per storage
   * (CONFLICT while another one's marker is fresh). dryRun lists without deleting.
   */
  collectGarbage(options?: CollectGarbageOptions): Promise<GarbageReport>;
  /** Re-hashes the chunks the manifests name; reports corrupt and missing ones with the manifests that name them. */
  verify(options?: VerifyOptions): Promise<VerifyReport>;
  /** Logical bytes (sum of standalone sizes of all manifests), unique bytes (stored chunks), dedup ratio as a decimal string. */
  stats(options?: { signal?: AbortSignal }): Promise<ChunkStoreStats>;
  /** Drops the lease of a run that is gone (recovery); idempotent. */
  releaseLease(leaseId: string): Promise<void>;
}

/**
 * A chunk store over `disk`.
 * @throws VALIDATION_FAILED naming a bad option (e.g. `codec: 'zstd'` where node:zlib has no zstd).
 */
export function createChunkStore(disk: StorageDisk, options: ChunkStoreOptions = {}): ChunkStore {
  const ctx = chunkContext(disk, options);
  return {
    writeImage: (chunks, info, writeOptions) => writeImage(ctx, chunks, info, writeOptions),
    prepareImage: (writeOptions) => prepareImage(ctx, writeOptions),
    readManifest: (key) => readManifestAt(ctx, checkManifestKey(key)),
    readImage: (manifest, readOptions) => readImage(ctx, manifest, readOptions),
    async deleteManifest(key) {
      await disk.delete(checkManifestKey(key));
    },
    collectGarbage: (gcOptions) => collectGarbage(ctx, gcOptions),
    verify: (verifyOptions) => verifyStore(ctx, verifyOptions),
    stats: (statsOptions = {}) => storeStats(ctx, statsOptions.signal),
    releaseLease: (leaseId) => deleteLease(ctx, checkLeaseId(leaseId)),
  };
}
