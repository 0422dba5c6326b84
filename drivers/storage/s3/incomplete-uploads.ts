/**
 * The S3 driver's incomplete multipart uploads: listed (for reconcile) and aborted.
 * @module
 */
import type { IncompleteUpload } from '../../../src/ports/storage-driver';
import { isS3NoSuchUpload, isS3NotFound } from './errors';
import { s3DriverKey, s3KeyPrefix, s3ObjectKey } from './options';
import type { S3Session } from './session';

/** Every multipart upload under the storage's prefix, optionally only those started before `olderThan`. */
export async function listS3IncompleteUploads(
  session: S3Session,
  incompleteOptions: { olderThan?: Date } = {},
): Promise<IncompleteUpload[]> {
  const { olderThan } = incompleteOptions;
  const errorContext = session.errorContext('list incomplete multipart uploads');
  return session.call(errorContext, async ({ sdk, client }) => {
    const found: IncompleteUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await client.send(
        new sdk.ListMultipartUploadsCommand({
          Bucket: session.bucket,
          Prefix: s3KeyPrefix(session.prefix),
          ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
          ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
        }),
      );
      for (const upload of page.Uploads ?? []) {
        const key = upload.Key === undefined ? null : s3DriverKey(session.prefix, upload.Key);
        if (key === null || upload.UploadId === undefined) continue;
        const startedAt = upload.Initiated ?? null;
        if (olderThan !== undefined && startedAt !== null && startedAt >= olderThan) continue;
        found.push({ key, id: upload.UploadId, startedAt });
      }
      if (page.IsTruncated !== true || (page.NextKeyMarker === undefined && page.NextUploadIdMarker === undefined)) break;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
    return found;
  });
}

/** Aborts one multipart upload; one already gone is not an error. */
export async function abortS3IncompleteUpload(session: S3Session, upload: IncompleteUpload): Promise<void> {
  const errorContext = session.errorContext(`abort the incomplete upload of "${upload.key}"`);
  await session.call(errorContext, async ({ sdk, client }) => {
    try {
      await client.send(
        new sdk.AbortMultipartUploadCommand({ Bucket: session.bucket, Key: s3ObjectKey(session.prefix, upload.key), UploadId: upload.id }),
      );
    } catch (error) {
      if (isS3NoSuchUpload(error) || isS3NotFound(error)) return;
      throw error;
    }
  });
}
