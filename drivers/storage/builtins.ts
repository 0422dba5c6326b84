/**
 * The storage drivers every SDK instance registers by default: `local`, `nfs` and `s3`. None of them
 * loads a heavy SDK at import time (S3 imports the AWS SDK lazily on first use).
 * @module
 */
import type { StorageDriverFactory } from '../../src/ports/storage-driver';
import { localStorageDriver } from './local';
import { nfsStorageDriver } from './nfs';
import { s3StorageDriver } from './s3';

/** The built-in storage driver factories. */
export const builtinStorageDrivers: readonly StorageDriverFactory[] = [localStorageDriver as StorageDriverFactory, nfsStorageDriver as StorageDriverFactory, s3StorageDriver as StorageDriverFactory];
