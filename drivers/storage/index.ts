/**
 * The built-in storage drivers in one list, for hosts that want them all: `local`, `nfs` and `s3`.
 * The core registers no storage driver by itself; pass them like the hypervisor driver:
 * `createInstanceImages({ storageDrivers: builtinStorageDrivers, ... })`. None of them loads a heavy
 * SDK at import time (S3 imports the AWS SDK lazily on first use).
 * @module
 */
import type { StorageDriverFactory } from '../../src/ports/storage-driver';
import { localStorageDriver } from './local';
import { nfsStorageDriver } from './nfs';
import { s3StorageDriver } from './s3';

export { localStorageDriver } from './local';
export { nfsStorageDriver } from './nfs';
export { s3StorageDriver } from './s3';

/** The built-in storage driver factories: `local`, `nfs` and `s3`. */
export const builtinStorageDrivers: readonly StorageDriverFactory[] = [
  localStorageDriver as StorageDriverFactory,
  nfsStorageDriver as StorageDriverFactory,
  s3StorageDriver as StorageDriverFactory,
];
