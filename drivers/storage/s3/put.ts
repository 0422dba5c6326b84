/**
 * The S3 driver's put: the driver's own multipart loop ({@link putInParts}) through a {@link
 * PartSink} whose parts are plain signed keep-alive requests, for a known size (the part size
 * chosen from it) and an unknown one (parts growing from the base part size), so that a failure
 * never leaves a multipart upload behind unnoticed.
 * @module
 */
import type { Readable } from 'node:stream';
import { Readable as NodeReadable } from 'node:stream';
import { InstanceImagesError } from '../../../src/errors';
import type { PutBytesOptions, PutOptions } from '../../../src/ports/storage-driver';
import { isS3NoSuchUpload, toS3StorageError, type S3ErrorContext } from './errors';
import { s3ObjectKey, s3PartSize } from './options';
import { trackS3PartTarget, type S3PartTarget } from './part-request';
import { putInParts, type PartSink } from './parts';
import { recordPlainBase } from './plain-requests';
import { abortError, type S3Runtime, type S3Session } from './session';

/** Options of the S3 driver's `put`: the port's options plus per-part progress. */
export interface S3PutOptions extends PutOptions {
  /** Called after each part is stored with the total bytes stored so far. */
  onProgress?: (uploadedBytes: number) => void;
}

/** The requests of one put of `objectKey`, for {@link putInParts}. */
function partSink({ sdk, client, parts: partUploader }: S3Runtime, session: S3Session, objectKey: string): PartSink {
  const target = { Bucket: session.bucket, Key: objectKey };
  let partTarget: (() => S3PartTarget | undefined) | undefined;
  return {
    async create() {
      const command = new sdk.CreateMultipartUploadCommand(target);
      partTarget = trackS3PartTarget(command, session.region);
      const created = await client.send(command);
      if (created.UploadId === undefined) throw new Error('CreateMultipartUpload returned no UploadId');
      return created.UploadId;
    },
    async uploadPart(uploadId, partNumber, body, abortSignal) {
      const url = partTarget?.();
      if (url === undefined) throw new Error('The URL of the multipart upload is not known');
      const etag = await partUploader.uploadPart(url, uploadId, partNumber, body, abortSignal);
      // CompleteMultipartUpload needs the ETag of every part; some services omit it only on complete (radosgw).
      if (etag === '') throw new Error(`UploadPart returned no ETag for part ${partNumber}`);
      return etag;
    },
    async complete(uploadId, parts) {
      // The response's ETag is not used: radosgw returns an empty one.
      await client.send(new sdk.CompleteMultipartUploadCommand({ ...target, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    },
    async abort(uploadId) {
      try {
        await client.send(new sdk.AbortMultipartUploadCommand({ ...target, UploadId: uploadId }));
      } catch (error) {
        if (!isS3NoSuchUpload(error)) throw error;
      }
    },
    async putObject(body, abortSignal) {
      await client.send(new sdk.PutObjectCommand({ ...target, Body: body, ContentLength: body.length }), { abortSignal });
    },
  };
}

/**
 * A put of exactly `size` bytes, or of as many as the body has when `size` is undefined: the
 * driver's own part loop with reusable buffers (whose parts grow when the size is unknown).
 */
async function putWithParts(
  session: S3Session,
  key: string,
  body: Readable,
  size: number | undefined,
  putOptions: S3PutOptions,
  errorContext: S3ErrorContext,
): Promise<{ size: number }> {
  const { signal, onProgress } = putOptions;
  let loaded: S3Runtime;
  try {
    if (signal?.aborted) throw abortError();
    loaded = await session.load(errorContext);
  } catch (error) {
    if (!body.destroyed) body.destroy();
    throw toS3StorageError(error, errorContext);
  }
  return putInParts(body, partSink(loaded, session, s3ObjectKey(session.prefix, key)), {
    key,
    size,
    partSize: s3PartSize(size, session.basePartSize),
    queueSize: session.queueSize,
    ...(signal ? { signal } : {}),
    ...(onProgress ? { onProgress } : {}),
    mapError: (error) => toS3StorageError(error, errorContext),
  });
}

/** Stores `body` under `key`: the driver's `put`. */
export async function putS3Object(
  session: S3Session,
  key: string,
  body: Readable,
  putOptions: S3PutOptions = {},
): Promise<{ size: number }> {
  const errorContext = session.errorContext(`upload "${key}"`, putOptions.signal);
  return putWithParts(session, key, body, putOptions.size, putOptions, errorContext);
}

/** S3's largest object in one PutObject (5 GiB). */
const S3_MAX_SINGLE_PUT = 5 * 1024 ** 3;

/**
 * A small object held in memory, in one PutObject. A `sha256` given is sent as the signed payload
 * hash (`x-amz-content-sha256`): the SDK does not hash the body again, and S3 stores nothing unless
 * the bytes it received hash to it (`XAmzContentSHA256Mismatch`, mapped to CHECKSUM_MISMATCH).
 * Beyond S3's single-put limit, the driver's multipart put runs instead (its digest unchecked).
 */
export async function putS3Bytes(
  session: S3Session,
  key: string,
  bytes: Buffer,
  options: PutBytesOptions = {},
): Promise<{ size: number; sha256Verified: boolean }> {
  const { signal } = options;
  const errorContext = session.errorContext(`upload "${key}"`, signal);
  const sha256 = options.sha256?.toLowerCase();
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'The sha256 of a put must be 64 hexadecimal digits', {
      fields: [{ path: 'sha256', message: 'must be 64 hexadecimal digits' }],
    });
  }
  if (bytes.length > S3_MAX_SINGLE_PUT) {
    const written = await putWithParts(session, key, NodeReadable.from([bytes]), bytes.length, signal ? { signal } : {}, errorContext);
    return { size: written.size, sha256Verified: false };
  }
  try {
    if (signal?.aborted) throw abortError();
    const { sdk, client, plain } = await session.load(errorContext);
    const objectKey = s3ObjectKey(session.prefix, key);
    // With its digest known, a put is one plain request once a first one recorded the URL (./plain-requests).
    if (sha256 !== undefined && plain.base) {
      await plain.put(plain.base, objectKey, bytes, sha256, signal ?? new AbortController().signal);
      return { size: bytes.length, sha256Verified: true };
    }
    const command = new sdk.PutObjectCommand({ Bucket: session.bucket, Key: objectKey, Body: bytes, ContentLength: bytes.length });
    const record = recordPlainBase(plain, command, session.region, objectKey);
    if (sha256 !== undefined) {
      // The signer takes a payload hash already in the headers instead of hashing the body.
      command.middlewareStack.add(
        (next) => (args) => {
          (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = sha256;
          return next(args);
        },
        { step: 'build', name: 'instanceImagesKnownSha256' },
      );
    }
    await client.send(command, signal ? { abortSignal: signal } : {});
    record();
    return { size: bytes.length, sha256Verified: sha256 !== undefined };
  } catch (error) {
    throw toS3StorageError(error, errorContext);
  }
}
