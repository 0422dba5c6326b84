/**
 * The S3 storage driver on @aws-sdk/client-s3 and @aws-sdk/lib-storage. The SDK is imported lazily
 * on the first operation, so importing this module (or the options) does not load it.
 *
 * A put of a known size runs the driver's own multipart loop ({@link putInParts}) with a fixed
 * pool of reusable part buffers, and sends its parts as plain keep-alive requests signed by the
 * client's signer ({@link createS3PartUploader}: the SDK's per-request machinery, kept alive for
 * every part in flight, was promoted to the old generation and made peak RSS grow with the object
 * size); everything else goes through the SDK client. lib-storage's Upload is used only when the
 * size is unknown.
 *
 * Works with AWS S3 and with S3-compatible services that lack newer features (Ceph radosgw,
 * MinIO): request checksums are only sent when an operation requires them, path-style
 * addressing is available, and nothing depends on the ETag CompleteMultipartUpload returns
 * (radosgw returns an empty one).
 * @module
 */
import { PassThrough, type Readable } from 'node:stream';
import type * as S3Sdk from '@aws-sdk/client-s3';
import type * as LibStorage from '@aws-sdk/lib-storage';
import { InstanceImagesError } from '../../../src/errors';
import type { IncompleteUpload, PutOptions, StorageDriver, StoredObject } from '../../../src/ports/storage-driver';
import { pageSize } from '../../../src/util/cursor';
import { isS3NoSuchUpload, isS3NotFound, redactSecrets, s3HttpStatus, toS3StorageError, type S3ErrorContext } from './errors';
import { S3_DEFAULT_PART_SIZE, S3_DEFAULT_QUEUE_SIZE, normaliseS3Prefix, s3DriverKey, s3KeyPrefix, s3ObjectKey, s3PartSize, type S3StorageOptions } from './options';
import { createS3PartUploader, s3ClientClock, s3ClientSigner, trackS3PartTarget, type S3PartTarget, type S3PartUploader } from './part-request';
import { putInParts, type PartSink } from './parts';

/** Options of the S3 driver's `put`: the port's options plus per-part progress. */
export interface S3PutOptions extends PutOptions {
  /** Called after each part is stored with the total bytes stored so far. */
  onProgress?: (uploadedBytes: number) => void;
}

/** The loaded SDK and the client built from the options. */
interface S3Runtime {
  sdk: typeof S3Sdk;
  Upload: typeof LibStorage.Upload;
  client: S3Sdk.S3Client;
  /** Sends the parts of known-size puts (signed by the client's signer). */
  parts: S3PartUploader;
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

/** How long to wait for a TCP connection to the endpoint. */
const CONNECTION_TIMEOUT_MS = 10_000;
/** How long a request may sit without any socket activity before it fails. */
const SOCKET_IDLE_TIMEOUT_MS = 120_000;

function abortError(): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

function byteLengthOf(body: unknown): number {
  if (body instanceof Uint8Array) return body.byteLength;
  if (typeof body === 'string') return Buffer.byteLength(body);
  return 0;
}

/** Creates an S3 driver instance from validated options. The SDK loads on the first call. */
export function createS3StorageDriver(options: S3StorageOptions): StorageDriver {
  const bucket = options.bucket;
  const prefix = normaliseS3Prefix(options.prefix);
  const basePartSize = options.partSizeBytes ?? S3_DEFAULT_PART_SIZE;
  const queueSize = options.queueSize ?? S3_DEFAULT_QUEUE_SIZE;
  const endpointLabel = options.endpoint === undefined ? `AWS S3 (${options.region})` : new URL(options.endpoint).origin;
  const secrets = [options.secretAccessKey, options.sessionToken].filter((value): value is string => value !== undefined);
  let runtime: Promise<S3Runtime> | undefined;
  let closed = false;

  const context = (action: string, signal?: AbortSignal): S3ErrorContext => ({ action, bucket, endpoint: endpointLabel, secrets, ...(signal ? { signal } : {}) });

  const load = (errorContext: S3ErrorContext): Promise<S3Runtime> => {
    if (closed) return Promise.reject(new InstanceImagesError('STORAGE_UNAVAILABLE', `The S3 storage driver for bucket "${bucket}" was closed`));
    runtime ??= (async () => {
      let sdk: typeof S3Sdk;
      let lib: typeof LibStorage;
      try {
        [sdk, lib] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]);
      } catch (error) {
        runtime = undefined;
        throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The s3 storage driver needs the packages @aws-sdk/client-s3 and @aws-sdk/lib-storage: install them next to instance-images', { cause: error });
      }
      const client = new sdk.S3Client({
        region: options.region,
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        forcePathStyle: options.forcePathStyle,
        ...(options.accessKeyId !== undefined && options.secretAccessKey !== undefined
          ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey, ...(options.sessionToken === undefined ? {} : { sessionToken: options.sessionToken }) } }
          : {}),
        // radosgw (and other S3-compatible services) reject the SDK's default aws-chunked
        // checksums on streamed bodies; send/validate checksums only where S3 requires them.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: SOCKET_IDLE_TIMEOUT_MS },
      });
      const parts = createS3PartUploader({
        signer: s3ClientSigner(client),
        clock: s3ClientClock(client),
        connectionTimeoutMs: CONNECTION_TIMEOUT_MS,
        socketIdleTimeoutMs: SOCKET_IDLE_TIMEOUT_MS,
      });
      return { sdk, Upload: lib.Upload, client, parts };
    })();
    return runtime.catch((error: unknown) => {
      throw toS3StorageError(error, errorContext);
    });
  };

  /** Runs one SDK call, mapping every failure. */
  const call = async <T>(errorContext: S3ErrorContext, fn: (rt: S3Runtime) => Promise<T>): Promise<T> => {
    const rt = await load(errorContext);
    try {
      return await fn(rt);
    } catch (error) {
      throw toS3StorageError(error, errorContext);
    }
  };

  /**
   * A view of the client for one lib-storage Upload (a put of unknown size): it records the
   * multipart upload id and the bytes stored, passes the caller's AbortSignal to every data request
   * (so a cancel stops the requests in flight), and never lets a failed AbortMultipartUpload hide
   * the error that caused it.
   */
  const trackingClient = (rt: S3Runtime, state: UploadState, put: { signal?: AbortSignal; onProgress?: (bytes: number) => void }): S3Sdk.S3Client => {
    const { sdk, client } = rt;
    const send = (command: AnyCommand, abortSignal?: AbortSignal): Promise<unknown> => client.send(command, abortSignal ? { abortSignal } : {});
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
  };

  /** The requests of one known-size put of `objectKey`, for {@link putInParts}. */
  const partSink = ({ sdk, client, parts: partUploader }: S3Runtime, objectKey: string): PartSink => {
    const target = { Bucket: bucket, Key: objectKey };
    let partTarget: (() => S3PartTarget | undefined) | undefined;
    return {
      async create() {
        const command = new sdk.CreateMultipartUploadCommand(target);
        partTarget = trackS3PartTarget(command, options.region);
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
  };

  const driver: StorageDriver = {
    name: 's3',
    capabilities: { shared: true, pathAccess: false },

    async put(key: string, body: Readable, putOptions: S3PutOptions = {}): Promise<{ size: number }> {
      const { signal, size, onProgress } = putOptions;
      const errorContext = context(`upload "${key}"`, signal);
      const objectKey = s3ObjectKey(prefix, key);
      if (size !== undefined) {
        let loaded: S3Runtime;
        try {
          if (signal?.aborted) throw abortError();
          loaded = await load(errorContext);
        } catch (error) {
          if (!body.destroyed) body.destroy();
          throw toS3StorageError(error, errorContext);
        }
        return putInParts(body, partSink(loaded, objectKey), {
          key,
          size,
          partSize: s3PartSize(size, basePartSize),
          queueSize,
          ...(signal ? { signal } : {}),
          ...(onProgress ? { onProgress } : {}),
          mapError: (error) => toS3StorageError(error, errorContext),
        });
      }
      const state: UploadState = { uploadId: undefined, completed: false, abortedOnServer: false, bytes: 0 };
      // Cancelling destroys the body: lib-storage stops reading and fails the upload, which aborts it.
      const onAbort = (): void => {
        body.destroy(abortError());
      };
      let rt: S3Runtime | undefined;
      try {
        if (signal?.aborted) throw abortError();
        rt = await load(errorContext);
        if (signal?.aborted) throw abortError();
        signal?.addEventListener('abort', onAbort, { once: true });
        const upload = new rt.Upload({
          client: trackingClient(rt, state, { ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) }),
          params: { Bucket: bucket, Key: objectKey, Body: body },
          partSize: basePartSize,
          queueSize,
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
            await rt.client.send(new rt.sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: objectKey, UploadId: state.uploadId }));
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
    },

    async get(key, getOptions = {}) {
      const { range, signal } = getOptions;
      const errorContext = context(`read "${key}"`, signal);
      if (range !== undefined && (!Number.isInteger(range.start) || range.start < 0 || (range.end !== undefined && (!Number.isInteger(range.end) || range.end < range.start)))) {
        throw new InstanceImagesError('VALIDATION_FAILED', 'The byte range is not valid: start must be an integer ≥ 0 and end an integer ≥ start', { fields: [{ path: 'range', message: 'is not valid' }] });
      }
      if (signal?.aborted) throw toS3StorageError(abortError(), errorContext);
      const response = await call(errorContext, async ({ sdk, client }) => {
        try {
          return await client.send(
            new sdk.GetObjectCommand({
              Bucket: bucket,
              Key: s3ObjectKey(prefix, key),
              ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end ?? ''}` }),
            }),
            signal ? { abortSignal: signal } : {},
          );
        } catch (error) {
          if (range !== undefined && (s3HttpStatus(error) === 416 || (error as { name?: unknown }).name === 'InvalidRange')) {
            throw new InstanceImagesError('VALIDATION_FAILED', `The byte range starts at ${range.start}, beyond the end of "${key}"`, { cause: error, fields: [{ path: 'range.start', message: 'is beyond the end of the object' }] });
          }
          throw error;
        }
      });
      const source = response.Body as Readable | undefined;
      const output = new PassThrough();
      if (source === undefined) {
        output.end();
        return output;
      }
      // Errors of the HTTP body (connection reset mid-read) surface as coded errors to the reader.
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
    },

    async stat(key) {
      const errorContext = context(`read the metadata of "${key}"`);
      return call(errorContext, async ({ sdk, client }) => {
        try {
          const head = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: s3ObjectKey(prefix, key) }));
          return { key, size: head.ContentLength ?? 0, modifiedAt: head.LastModified ?? new Date(0) } satisfies StoredObject;
        } catch (error) {
          if (isS3NotFound(error)) return null;
          throw error;
        }
      });
    },

    async list(listOptions = {}) {
      const limit = pageSize(listOptions.limit);
      const cursor = listOptions.cursor ?? undefined;
      const errorContext = context('list objects');
      return call(errorContext, async ({ sdk, client }) => {
        let page: S3Sdk.ListObjectsV2CommandOutput;
        try {
          page = await client.send(
            new sdk.ListObjectsV2Command({
              Bucket: bucket,
              Prefix: s3KeyPrefix(prefix) + (listOptions.prefix ?? ''),
              MaxKeys: limit,
              ...(cursor === undefined ? {} : { ContinuationToken: cursor }),
            }),
          );
        } catch (error) {
          if (cursor !== undefined && s3HttpStatus(error) === 400) {
            throw new InstanceImagesError('VALIDATION_FAILED', 'The page cursor is not valid', { cause: error, fields: [{ path: 'cursor', message: 'is not valid' }] });
          }
          throw error;
        }
        const items: StoredObject[] = [];
        for (const object of page.Contents ?? []) {
          const key = object.Key === undefined ? null : s3DriverKey(prefix, object.Key);
          // Keys ending in "/" are folder markers made by other S3 tools, not objects of ours.
          if (key === null || key.endsWith('/')) continue;
          items.push({ key, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) });
        }
        const nextCursor = page.IsTruncated === true && page.NextContinuationToken ? page.NextContinuationToken : null;
        return { items, nextCursor };
      });
    },

    async delete(key) {
      const errorContext = context(`delete "${key}"`);
      await call(errorContext, async ({ sdk, client }) => {
        try {
          await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: s3ObjectKey(prefix, key) }));
        } catch (error) {
          if (isS3NotFound(error)) return;
          throw error;
        }
      });
    },

    async freeSpace() {
      return null;
    },

    async health() {
      const errorContext = context('check the bucket');
      try {
        await call(errorContext, async ({ sdk, client }) => {
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
        return { ok: false, message: redactSecrets(message, secrets) };
      }
    },

    async listIncomplete(incompleteOptions = {}) {
      const { olderThan } = incompleteOptions;
      const errorContext = context('list incomplete multipart uploads');
      return call(errorContext, async ({ sdk, client }) => {
        const found: IncompleteUpload[] = [];
        let keyMarker: string | undefined;
        let uploadIdMarker: string | undefined;
        for (;;) {
          const page = await client.send(
            new sdk.ListMultipartUploadsCommand({
              Bucket: bucket,
              Prefix: s3KeyPrefix(prefix),
              ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
              ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
            }),
          );
          for (const upload of page.Uploads ?? []) {
            const key = upload.Key === undefined ? null : s3DriverKey(prefix, upload.Key);
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
    },

    async abortIncomplete(upload) {
      const errorContext = context(`abort the incomplete upload of "${upload.key}"`);
      await call(errorContext, async ({ sdk, client }) => {
        try {
          await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: s3ObjectKey(prefix, upload.key), UploadId: upload.id }));
        } catch (error) {
          if (isS3NoSuchUpload(error) || isS3NotFound(error)) return;
          throw error;
        }
      });
    },

    async close() {
      closed = true;
      const current = runtime;
      runtime = undefined;
      if (current) {
        try {
          const loaded = await current;
          loaded.parts.close();
          loaded.client.destroy();
        } catch {
          // the SDK never loaded: nothing to release
        }
      }
    },
  };
  return driver;
}
