/**
 * The chunked image layout (issue 14): content-addressed chunks, a manifest per image, leases and
 * garbage collection, on any storage driver.
 * @module
 */
export { createChunkStore, type ChunkStore } from './store';
export type { ChunkStoreOptions } from './context';
export type { CommitOptions, PendingImage, PreparedImage, WriteImageOptions } from './write';
export type { ReadImageOptions, ImageChunk } from './read';
export type { GarbageReport, CollectGarbageOptions } from './gc';
export type { VerifyReport, VerifyOptions, BrokenChunk, ChunkStoreStats } from './verify';
export {
  CHUNK_MANIFEST_FORMAT,
  MIN_CHUNK_SIZE_BYTES,
  MAX_CHUNK_SIZE_BYTES,
  manifestDigest,
  parseManifest,
  serializeManifest,
  standaloneSize,
  type ChunkCodec,
  type ChunkManifest,
  type ChunkManifestSource,
  type ChunkScope,
  type ManifestChunk,
} from './manifest';
export { isZstdAvailable } from './codec';
export { chunkKey, leaseKey, SWEEP_MARKER_KEY, MANIFEST_SUFFIX } from './keys';
