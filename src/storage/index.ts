/**
 * The storage core: key safety, the driver registry and the wrapper that every driver runs behind.
 * @module
 */
export { normalizeStorageKey, normalizeStoragePrefix, MAX_STORAGE_KEY_BYTES, MAX_STORAGE_KEY_SEGMENT_BYTES } from './keys';
export { createStorageRegistry, MASKED_SECRET, type StorageRegistry } from './registry';
export {
  wrapStorageDriver,
  type StorageDisk,
  type StorageDiskOptions,
  type DiskPutBytesOptions,
  type DiskPutOptions,
  type DiskPutResult,
  type StorageProgress,
  type StorageOperationEvent,
  type StorageRetryPolicy,
} from './disk';
