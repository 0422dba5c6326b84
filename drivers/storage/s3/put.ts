/**
 * The S3 driver's put. A known size runs the driver's own multipart loop ({@link putInParts})
 * through a {@link PartSink} whose parts are plain signed keep-alive requests; an unknown size
 * goes through lib-storage's Upload with a client that tracks the upload it makes, so that a
 * failure never leaves a multipart upload behind unnoticed.
 * @module
 */
import type { Readable } from 'node:stream';
import type * as S3Sdk from '@aws-sdk/client-s3';
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

/** What a tracked upload learned from the requests it sent. */
interface UploadState {
  uploadId: string | undefined;
  completed: boolean;
  abortedOnServer: boolean;
  bytes: number;
}

/** A command as `S3Client.send` takes it, without the overload noise. */
type AnyCommand = Parameters<S3Sdk.S3Client['send']>[0];

function byteLengthOf(body: unknown): number {
  if (body instanceof Uint8Array) return body.byteLength;
  if (typeof body === 'string') return Buffer.byteLength(body);
  return 0;
}

/**
 * A view of the client for one lib-storage Upload (a put of unknown size): it records the
 * multipart upload id and the bytes stored, passes the caller's AbortSignal to every data request
 * (so a cancel stops the requests in flight), and never lets a failed AbortMultipartUpload hide
 * the error that caused it.
 */
function trackingClient(
  rt: S3Runtime,
  state: UploadState,
  put: { signal?: AbortSignal; onProgress?: (bytes: number) => void },
): S3Sdk.S3Client {
  const { sdk, client } = rt;
  const send = (command: AnyCommand, abortSignal?: AbortSignal): Promise<unknown> =>
    client.send(command, abortSignal ? { abortSignal } : {});
  const trackedSend = async (command: AnyCommand): Promise<unknown> => {
    if (command instanceof sdk.AbortMultipartUploadCommand) {
      try {
        const result = await send(command);
        state.abortedOnServer = true;
        return result;
      } catch (error) {
        if (isS3NoSuchUpload(error)) {
          state.abortedOnServer = true;
          return {};
        }
        // lib-storage would throw this instead of the real failure; the driver retries the abort itself.
        return {};
      }
    }
    if (command instanceof sdk.CreateMultipartUploadCommand) {
      // No AbortSignal: the upload id must always be learned, so it can be aborted.
      const result = (await send(command)) as S3Sdk.CreateMultipartUploadCommandOutput;
      state.uploadId = result.UploadId;
      if (put.signal?.aborted) throw abortError();
      return result;
    }
    if (command instanceof sdk.UploadPartCommand) {
      const length = byteLengthOf(command.input.Body);
      const result = await send(command, put.signal);
      state.bytes += length;
      put.onProgress?.(state.bytes);
      return result;
    }
    if (command instanceof sdk.PutObjectCommand) {
      const length = byteLengthOf(command.input.Body);
      const result = await send(command, put.signal);
      state.bytes = length;
      state.completed = true;
      put.onProgress?.(state.bytes);
      return result;
    }
    if (command instanceof sdk.CompleteMultipartUploadCommand) {
      if (put.signal?.aborted) throw abortError();
      // No AbortSignal: once completion is sent, its outcome must be known.
      const result = await send(command);
      state.completed = true;
      return result;
    }
    return send(command, put.signal);
  };
  return Object.create(client, { send: { value: trackedSend } }) as S3Sdk.S3Client;
}

/** The requests of one known-size put of `objectKey`, for {@link putInParts}. */
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

/** A put of exactly `size` bytes: the driver's own part loop with reusable buffers. */
async function putKnownSize(
  session: S3Session,
  key: string,
  body: Readable,
  size: number,
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

/** A put of unknown size: lib-storage's Upload, through a client that tracks the upload. */
async function putUnknownSize(
  session: S3Session,
  key: string,
  body: Readable,
  putOptions: S3PutOptions,
  errorContext: S3ErrorContext,
): Promise<{ size: number }> {
  const { signal, onProgress } = putOptions;
  const objectKey = s3ObjectKey(session.prefix, key);
  const state: UploadState = { uploadId: undefined, completed: false, abortedOnServer: false, bytes: 0 };
  // Cancelling destroys the body: lib-storage stops reading and fails the upload, which aborts it.
  const onAbort = (): void => {
    body.destroy(abortError());
  };
  let rt: S3Runtime | undefined;
  try {
    if (signal?.aborted) throw abortError();
    rt = await session.load(errorContext);
    if (signal?.aborted) throw abortError();
    signal?.addEventListener('abort', onAbort, { once: true });
    const upload = new rt.Upload({
      client: trackingClient(rt, state, { ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) }),
      params: { Bucket: session.bucket, Key: objectKey, Body: body },
      partSize: session.basePartSize,
      queueSize: session.queueSize,
      leavePartsOnError: false,
    });
    await upload.done();
    return { size: state.bytes };
  } catch (error) {
    if (!body.destroyed) body.destroy();
    const mapped = toS3StorageError(error, errorContext);
    if (rt && state.uploadId !== undefined && !state.completed && !state.abortedOnServer) {
      // lib-storage aborts on failure too; this covers a failed first attempt (e.g. the server was down).
      try {
        await rt.client.send(new rt.sdk.AbortMultipartUploadCommand({ Bucket: session.bucket, Key: objectKey, UploadId: state.uploadId }));
      } catch (abortFailure) {
        if (!isS3NoSuchUpload(abortFailure)) {
          mapped.details.incompleteUpload = { key, id: state.uploadId };
        }
      }
    }
    throw mapped;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Stores `body` under `key`: the driver's `put`. */
export async function putS3Object(
  session: S3Session,
  key: string,
  body: Readable,
  putOptions: S3PutOptions = {},
): Promise<{ size: number }> {
  const errorContext = session.errorContext(`upload "${key}"`, putOptions.signal);
  if (putOptions.size !== undefined) return putKnownSize(session, key, body, putOptions.size, putOptions, errorContext);
  return putUnknownSize(session, key, body, putOptions, errorContext);
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
    const written = await putKnownSize(session, key, NodeReadable.from([bytes]), bytes.length, signal ? { signal } : {}, errorContext);
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
