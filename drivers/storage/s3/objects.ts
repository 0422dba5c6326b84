/**
 * The S3 driver's reads and deletes: get (ranged, streamed), stat, list and delete of objects,
 * and the bucket's health check.
 * @module
 */
import { PassThrough, type Readable } from 'node:stream';
import type * as S3Sdk from '@aws-sdk/client-s3';
import { InstanceImagesError } from '../../../src/errors';
import type { StoredObject } from '../../../src/ports/storage-driver';
import { pageSize } from '../../../src/util/cursor';
import { isS3NotFound, redactSecrets, s3HttpStatus, toS3StorageError, type S3ErrorContext } from './errors';
import { s3DriverKey, s3KeyPrefix, s3ObjectKey } from './options';
import { recordPlainBase } from './plain-requests';
import { abortError, type S3Session } from './session';

/** A byte range as `get` takes it. */
type ByteRange = { start: number; end?: number };

function assertValidRange(range: ByteRange | undefined): void {
  if (
    range !== undefined &&
    (!Number.isInteger(range.start) ||
      range.start < 0 ||
      (range.end !== undefined && (!Number.isInteger(range.end) || range.end < range.start)))
  ) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      'The byte range is not valid: start must be an integer ≥ 0 and end an integer ≥ start',
      { fields: [{ path: 'range', message: 'is not valid' }] },
    );
  }
}

/**
 * The object's body as a stream whose errors (connection reset mid-read, cancel) surface as coded
 * errors to the reader; destroying it stops the download.
 */
function codedBodyStream(source: Readable | undefined, errorContext: S3ErrorContext, signal: AbortSignal | undefined): Readable {
  const output = new PassThrough();
  if (source === undefined) {
    output.end();
    return output;
  }
  const onAbort = (): void => {
    output.destroy(toS3StorageError(abortError(), errorContext));
  };
  source.on('error', (error) => output.destroy(toS3StorageError(error, errorContext)));
  output.on('close', () => {
    signal?.removeEventListener('abort', onAbort);
    if (!source.destroyed) source.destroy();
  });
  signal?.addEventListener('abort', onAbort, { once: true });
  source.pipe(output);
  return output;
}

/** Opens `key` for reading, optionally a byte range: the driver's `get`. */
export async function getS3Object(
  session: S3Session,
  key: string,
  getOptions: { range?: ByteRange; signal?: AbortSignal } = {},
): Promise<Readable> {
  const { range, signal } = getOptions;
  const errorContext = session.errorContext(`read "${key}"`, signal);
  assertValidRange(range);
  if (signal?.aborted) throw toS3StorageError(abortError(), errorContext);
  const response = await session.call(errorContext, async ({ sdk, client }) => {
    try {
      return await client.send(
        new sdk.GetObjectCommand({
          Bucket: session.bucket,
          Key: s3ObjectKey(session.prefix, key),
          ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end ?? ''}` }),
        }),
        signal ? { abortSignal: signal } : {},
      );
    } catch (error) {
      if (range !== undefined && (s3HttpStatus(error) === 416 || (error as { name?: unknown }).name === 'InvalidRange')) {
        throw new InstanceImagesError('VALIDATION_FAILED', `The byte range starts at ${range.start}, beyond the end of "${key}"`, {
          cause: error,
          fields: [{ path: 'range.start', message: 'is beyond the end of the object' }],
        });
      }
      throw error;
    }
  });
  return codedBodyStream(response.Body as Readable | undefined, errorContext, signal);
}

/** The metadata of `key`, or `null` when it does not exist: the driver's `stat`. */
export async function statS3Object(session: S3Session, key: string): Promise<StoredObject | null> {
  const errorContext = session.errorContext(`read the metadata of "${key}"`);
  return session.call(errorContext, async ({ sdk, client, plain }) => {
    const objectKey = s3ObjectKey(session.prefix, key);
    // One plain request once a first one recorded the URL (./plain-requests): a capture asks this of every chunk.
    if (plain.base) {
      const found = await plain.head(plain.base, objectKey, new AbortController().signal);
      return found === null ? null : ({ key, ...found } satisfies StoredObject);
    }
    const command = new sdk.HeadObjectCommand({ Bucket: session.bucket, Key: objectKey });
    const record = recordPlainBase(plain, command, session.region, objectKey);
    try {
      const head = await client.send(command);
      return { key, size: head.ContentLength ?? 0, modifiedAt: head.LastModified ?? new Date(0) } satisfies StoredObject;
    } catch (error) {
      if (isS3NotFound(error)) return null;
      throw error;
    } finally {
      record();
    }
  });
}

/** A page of the objects under the storage's prefix (and `listOptions.prefix`): the driver's `list`. */
export async function listS3Objects(
  session: S3Session,
  listOptions: { prefix?: string; cursor?: string | null; limit?: number } = {},
): Promise<{ items: StoredObject[]; nextCursor: string | null }> {
  const limit = pageSize(listOptions.limit);
  const cursor = listOptions.cursor ?? undefined;
  const errorContext = session.errorContext('list objects');
  return session.call(errorContext, async ({ sdk, client }) => {
    let page: S3Sdk.ListObjectsV2CommandOutput;
    try {
      page = await client.send(
        new sdk.ListObjectsV2Command({
          Bucket: session.bucket,
          Prefix: s3KeyPrefix(session.prefix) + (listOptions.prefix ?? ''),
          MaxKeys: limit,
          ...(cursor === undefined ? {} : { ContinuationToken: cursor }),
        }),
      );
    } catch (error) {
      if (cursor !== undefined && s3HttpStatus(error) === 400) {
        throw new InstanceImagesError('VALIDATION_FAILED', 'The page cursor is not valid', {
          cause: error,
          fields: [{ path: 'cursor', message: 'is not valid' }],
        });
      }
      throw error;
    }
    const items: StoredObject[] = [];
    for (const object of page.Contents ?? []) {
      const key = object.Key === undefined ? null : s3DriverKey(session.prefix, object.Key);
      // Keys ending in "/" are folder markers made by other S3 tools, not objects of ours.
      if (key === null || key.endsWith('/')) continue;
      items.push({ key, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) });
    }
    const nextCursor = page.IsTruncated === true && page.NextContinuationToken ? page.NextContinuationToken : null;
    return { items, nextCursor };
  });
}

/** Removes `key`; a missing object is not an error: the driver's `delete`. */
export async function deleteS3Object(session: S3Session, key: string): Promise<void> {
  const errorContext = session.errorContext(`delete "${key}"`);
  await session.call(errorContext, async ({ sdk, client }) => {
    try {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: session.bucket, Key: s3ObjectKey(session.prefix, key) }));
    } catch (error) {
      if (isS3NotFound(error)) return;
      throw error;
    }
  });
}

/** Whether the bucket is reachable with the credentials: the driver's `health` (never throws). */
export async function checkS3Bucket(session: S3Session): Promise<{ ok: boolean; message: string }> {
  const { bucket, endpointLabel } = session;
  const errorContext = session.errorContext('check the bucket');
  try {
    await session.call(errorContext, async ({ sdk, client }) => {
      try {
        await client.send(new sdk.HeadBucketCommand({ Bucket: bucket }));
      } catch (error) {
        // HeadBucket answers a bare 404 (no error body) when the bucket is missing.
        if (s3HttpStatus(error) === 404) throw Object.assign(error as object, { Code: 'NoSuchBucket' });
        throw error;
      }
    });
    return { ok: true, message: `S3 bucket "${bucket}" at ${endpointLabel} is reachable` };
  } catch (error) {
    const message = error instanceof InstanceImagesError ? error.message : `S3 bucket "${bucket}" at ${endpointLabel} could not be checked`;
    return { ok: false, message: redactSecrets(message, session.secrets) };
  }
}
