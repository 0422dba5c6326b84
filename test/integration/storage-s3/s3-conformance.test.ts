/** The shared storage driver conformance suite, run against the S3 driver on the real radosgw. */
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { testStorageDriver } from '../../../src/testing/storage-driver-suite';
import { adminClient, createBucket, deleteBucket, driverOptions, freshBucketName, loadS3TestEnv } from './s3-env';

const loaded = await loadS3TestEnv();

describe.skipIf(loaded.env === null)(`s3 on radosgw${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`, () => {
  const env = loaded.env!;
  const bucket = freshBucketName('s3conf');
  let admin: S3Client;

  beforeAll(async () => {
    admin = adminClient(env);
    await createBucket(admin, bucket);
  });

  afterAll(async () => {
    await deleteBucket(admin, bucket);
    admin.destroy();
  });

  // 5 MiB parts: the incomplete-upload case writes 6 MiB, so a multipart upload exists while it stalls.
  testStorageDriver({ describe, it, expect }, {
    name: 's3 (Ceph radosgw)',
    create: () => s3StorageDriver.create(driverOptions(env, bucket, { prefix: 'conformance', partSizeBytes: 5 * 1024 * 1024 }), {}),
  });
});
