/**
 * instance-images: the framework-agnostic core. Drivers and adapters live in their own subpaths
 * (`instance-images/drivers/*`, `instance-images/adapters/*`); test helpers in `instance-images/testing`.
 * @module
 */
export * from './errors';
export * from './model';
export * from './lifecycle';
export * from './events';
export type * from './ports';
export { DEFAULT_SCRATCH_DIR } from './ports/host-directory';
export * from './memory';
export { createTaskQueue, type TaskQueueOptions } from './tasks/queue';
export { TASK_STEPS, createProgressTracker, type TaskStepSpec, type ProgressTracker, type ProgressReport } from './tasks/progress';
export {
  createInstanceImages,
  InstanceImagesOptionsSchema,
  silentLogger,
  type InstanceImages,
  type InstanceImagesOptions,
} from './create-instance-images';
export * from './services';
// The chunked layout (issue 14), listed explicitly for the move to explicit export lists.
export {
  ChunkLayoutSchema,
  DEFAULT_CHUNK_SIZE_BYTES,
  StorageLayoutSchema,
  type ChunkLayout,
  type StorageLayout,
} from './model/image-storage';
export { ChunkGcOptionsSchema, type ChunkGcOptions, type ChunkStorageStats } from './services/chunked-storage';
export * from './billing';
export * from './storage';
export { encodeCursor, decodeCursor, pageSize, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type CursorKey } from './util/cursor';
export { parseOrThrow, zodIssues } from './util/validate';
export { publicError, CUSTOMER_VISIBLE_CODES, type PublicError, type ErrorAudience } from './util/public-error';
export {
  createChunkStore,
  CHUNK_MANIFEST_FORMAT,
  MIN_CHUNK_SIZE_BYTES,
  MAX_CHUNK_SIZE_BYTES,
  manifestDigest,
  parseManifest,
  serializeManifest,
  standaloneSize,
  isZstdAvailable,
  chunkKey,
  leaseKey,
  SWEEP_MARKER_KEY,
  MANIFEST_SUFFIX,
  type ChunkStore,
  type ChunkStoreOptions,
  type PendingImage,
  type WriteImageOptions,
  type ReadImageOptions,
  type ImageChunk,
  type GarbageReport,
  type CollectGarbageOptions,
  type VerifyReport,
  type VerifyOptions,
  type BrokenChunk,
  type ChunkStoreStats,
  type ChunkCodec,
  type ChunkManifest,
  type ChunkManifestSource,
  type ChunkScope,
  type ManifestChunk,
} from './chunks';
