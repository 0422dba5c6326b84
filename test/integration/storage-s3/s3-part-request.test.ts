/**
 * The lean UploadPart path (plain keep-alive requests signed by the client's own signer) against
 * the real radosgw: objects stored through it are byte-identical (sha256), keys that need escaping
 * are signed right, and radosgw's error answers (NoSuchUpload after an abort, a wrong secret) map
 * to exactly the codes the SDK's UploadPart errors map to.
 */
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListPartsCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { toS3StorageError, type S3ErrorContext } from '../../../drivers/storage/s3/errors';
import {
  createS3PartUploader,
  s3ClientClock,
  s3ClientSigner,
  trackS3PartTarget,
  type S3PartTarget,
} from '../../../drivers/storage/s3/part-request';
import { InstanceImagesError } from '../../../src/errors';
import { digestStream, randomData, streamOf } from './data';
import { driverOptions, loadS3TestEnv, openMultipartUploads, useTestBucket } from './s3-env';

const MiB = 1024 * 1024;
const loaded = await loadS3TestEnv();

describe.skipIf(loaded.env === null)(`s3 lean UploadPart path on radosgw${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`, () => {
  const env = loaded.env!;
  const s3 = useTestBucket(env, 's3lean');
  const { bucket } = s3;
  const context = (): S3ErrorContext => ({
    action: 'upload "lean"',
    bucket,
    endpoint: new URL(env.endpoint).origin,
    secrets: [env.secretAccessKey, 'wrong-secret-value-123'],
  });

  /** Starts a multipart upload with the admin client and returns its id and the URL its parts go to. */
  async function startUpload(key: string): Promise<{ uploadId: string; target: S3PartTarget }> {
    const command = new CreateMultipartUploadCommand({ Bucket: bucket, Key: key });
    const target = trackS3PartTarget(command, env.region);
    const created = await s3.admin.send(command);
    const url = target();
    expect(url).toBeDefined();
    return { uploadId: created.UploadId!, target: url! };
  }

  it('stores objects byte for byte through the driver, with keys that need escaping, path-style or not', async () => {
    for (const forcePathStyle of [true, false]) {
      const driver = s3StorageDriver.create(
        driverOptions(env, bucket, { prefix: 'lean dir', partSizeBytes: 5 * MiB, queueSize: 2, forcePathStyle }),
        {},
      );
      try {
        const key = `ä b+c%(1)~'*/${forcePathStyle ? 'path' : 'auto'}.qcow2`;
        // 3 full parts and a short one.
        const { data, sha256 } = randomData(15 * MiB + 4097);
        const progress: number[] = [];
        const onProgress = (bytes: number): void => void progress.push(bytes);
        expect(await driver.put(key, streamOf(data, 77_777), { size: data.length, onProgress } as never)).toEqual({ size: data.length });
        expect(progress).toHaveLength(4);
        expect(progress.at(-1)).toBe(data.length);
        const object = await s3.admin.send(new GetObjectCommand({ Bucket: bucket, Key: `lean dir/${key}` }));
        expect(await digestStream(object.Body as Readable)).toEqual({ sha256, size: data.length });
        expect(await digestStream(await driver.get(key))).toEqual({ sha256, size: data.length });
        await driver.delete(key);
      } finally {
        await driver.close?.();
      }
    }
    expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
  });

  it('sends parts whose ETags radosgw lists, and maps NoSuchUpload after an abort exactly like the SDK', async () => {
    const key = 'lean/aborted.bin';
    const { uploadId, target } = await startUpload(key);
    const uploader = createS3PartUploader({ signer: s3ClientSigner(s3.admin), clock: s3ClientClock(s3.admin) });
    try {
      const { data } = randomData(5 * MiB);
      const etag = await uploader.uploadPart(target, uploadId, 1, data, new AbortController().signal);
      expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
      const listed = await s3.admin.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
      expect(listed.Parts?.map((part) => [part.PartNumber, part.ETag, part.Size])).toEqual([[1, etag, data.length]]);

      await s3.admin.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
      const lean = await uploader.uploadPart(target, uploadId, 2, data, new AbortController().signal).catch((error: unknown) => error);
      const sdk = await s3.admin
        .send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 2, Body: data, ContentLength: data.length }),
        )
        .catch((error: unknown) => error);
      expect(lean).toMatchObject({ name: 'NoSuchUpload', $metadata: { httpStatusCode: 404 } });
      const mappedLean = toS3StorageError(lean, context());
      const mappedSdk = toS3StorageError(sdk, context());
      expect(mappedLean).toBeInstanceOf(InstanceImagesError);
      expect({ code: mappedLean.code, message: mappedLean.message, details: mappedLean.details }).toEqual({
        code: mappedSdk.code,
        message: mappedSdk.message,
        details: mappedSdk.details,
      });
      expect(mappedLean.code).toBe('STORAGE_UNAVAILABLE');
      expect(mappedLean.details).toMatchObject({ s3Error: 'NoSuchUpload', httpStatus: 404 });
    } finally {
      uploader.close();
    }
    expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
  });

  it('maps a wrong secret (radosgw verifies the signature) like the SDK, without the secret anywhere', async () => {
    const key = 'lean/denied.bin';
    const { uploadId, target } = await startUpload(key);
    const wrong = new S3Client({
      endpoint: env.endpoint,
      region: env.region,
      forcePathStyle: true,
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: 'wrong-secret-value-123' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const uploader = createS3PartUploader({ signer: s3ClientSigner(wrong), clock: s3ClientClock(wrong) });
    try {
      const { data } = randomData(MiB);
      const lean = await uploader.uploadPart(target, uploadId, 1, data, new AbortController().signal).catch((error: unknown) => error);
      const sdk = await wrong
        .send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 1, Body: data, ContentLength: data.length }),
        )
        .catch((error: unknown) => error);
      expect(lean).toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
      const mappedLean = toS3StorageError(lean, context());
      const mappedSdk = toS3StorageError(sdk, context());
      expect({ code: mappedLean.code, message: mappedLean.message, details: mappedLean.details }).toEqual({
        code: mappedSdk.code,
        message: mappedSdk.message,
        details: mappedSdk.details,
      });
      expect(mappedLean.code).toBe('STORAGE_UNAVAILABLE');
      expect(mappedLean.message).toContain('secret access key does not match');
      for (const text of [mappedLean.message, JSON.stringify(mappedLean), String((lean as Error).message), JSON.stringify(lean)]) {
        expect(text).not.toContain('wrong-secret-value-123');
        expect(text).not.toContain(env.secretAccessKey);
      }
    } finally {
      uploader.close();
      wrong.destroy();
      await s3.admin.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    }
    expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
  });
});
