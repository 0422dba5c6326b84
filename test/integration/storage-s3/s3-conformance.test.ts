/** The shared storage driver conformance suite, run against the S3 driver on the real radosgw. */
import { describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { testStorageDriver } from '../../../src/testing/storage-driver-suite';
import { driverOptions, loadS3TestEnv, useTestBucket } from './s3-env';

const loaded = await loadS3TestEnv();

describe.skipIf(loaded.env === null)(`s3 on radosgw${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`, () => {
  const env = loaded.env!;
  const s3 = useTestBucket(env, 's3conf');
  const { bucket } = s3;

  // 5 MiB parts: the incomplete-upload case writes 6 MiB, so a multipart upload exists while it stalls.
  testStorageDriver(
    { describe, it, expect },
    {
      name: 's3 (Ceph radosgw)',
      create: () => s3StorageDriver.create(driverOptions(env, bucket, { prefix: 'conformance', partSizeBytes: 5 * 1024 * 1024 }), {}),
    },
  );
});
