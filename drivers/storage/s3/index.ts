/**
 * The `s3` image storage driver (`instance-images/drivers/s3`): AWS S3 and S3-compatible services
 * such as Ceph radosgw and MinIO. Needs the optional peer dependency `@aws-sdk/client-s3`, which
 * loads only when the driver first talks to S3.
 * @module
 */
import type { StorageDriverFactory } from '../../../src/ports/storage-driver';
import { createS3StorageDriver } from './driver';
import { S3StorageOptionsSchema, S3_SECRET_FIELDS, type S3StorageOptions } from './options';

/**
 * The `s3` storage driver factory: register it with the storage registry.
 *
 * Config: `endpoint` (omit for AWS), `region`, `bucket`, `prefix`, `accessKeyId`,
 * `secretAccessKey` (secret), `sessionToken` (secret), `forcePathStyle`, `partSizeBytes`,
 * `queueSize`, `connectionTimeoutMs`, `noProgressTimeoutMs`. Objects are shared by every bound
 * hypervisor and have no path on them.
 */
export const s3StorageDriver: StorageDriverFactory<S3StorageOptions> = {
  name: 's3',
  optionsSchema: S3StorageOptionsSchema,
  secretFields: S3_SECRET_FIELDS,
  capabilities: { shared: true, pathAccess: false, verifiesSha256: true },
  needsHypervisor: false,
  create: (options) => createS3StorageDriver(options),
};

export { createS3StorageDriver, type S3PutOptions } from './driver';
export { toS3StorageError, type S3ErrorContext } from './errors';
export type { S3Timeouts } from './timeouts';
export {
  S3StorageOptionsSchema,
  S3_SECRET_FIELDS,
  S3_SECRET_MIN_LENGTH,
  S3_DEFAULT_PART_SIZE,
  S3_DEFAULT_QUEUE_SIZE,
  S3_DEFAULT_CONNECTION_TIMEOUT_MS,
  S3_DEFAULT_NO_PROGRESS_TIMEOUT_MS,
  S3_MIN_PART_SIZE,
  S3_MAX_PART_SIZE,
  S3_TARGET_MAX_PARTS,
  normalizeS3Prefix,
  s3PartSize,
  type S3StorageOptions,
  type S3StorageOptionsInput,
} from './options';
