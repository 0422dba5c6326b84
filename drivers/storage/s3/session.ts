/**
 * The state one S3 driver instance shares between its operations: the settings derived from the
 * options, the lazily loaded SDK and client ({@link S3Runtime}), and the mapping of every failure
 * to a coded error.
 * @module
 */
import type * as S3Sdk from '@aws-sdk/client-s3';
import { InstanceImagesError } from '../../../src/errors';
import { toS3StorageError, type S3ErrorContext } from './errors';
import {
  S3_DEFAULT_CONNECTION_TIMEOUT_MS,
  S3_DEFAULT_NO_PROGRESS_TIMEOUT_MS,
  S3_DEFAULT_PART_SIZE,
  S3_DEFAULT_QUEUE_SIZE,
  normalizeS3Prefix,
  type S3StorageOptions,
} from './options';
import { createS3PlainRequests, type S3PlainRequests } from './plain-requests';
import {
  abortableSleep,
  createNodePartTransport,
  createS3PartUploader,
  S3_PART_MAX_ATTEMPTS,
  s3ClientClock,
  s3ClientSigner,
  type S3PartUploader,
} from './part-request';
import { makeS3TimeoutsFinal, s3RequestHandlerOptions, type S3Timeouts } from './timeouts';

/** The loaded SDK and the client built from the options. */
export interface S3Runtime {
  sdk: typeof S3Sdk;
  client: S3Sdk.S3Client;
  /** Sends the parts of multipart puts (signed by the client's signer). */
  parts: S3PartUploader;
  /** Plain GET, PUT and HEAD of small objects (`getBytes`, `putBytes`, `stat`), on the same keep-alive connections as the parts. */
  plain: S3PlainRequests;
  /** Closes the connections of `parts` and `plain`. */
  closeTransport(): void;
}

/** What every operation of one driver instance shares. */
export interface S3Session {
  readonly bucket: string;
  /** The normalized key prefix (`""` for the bucket root). */
  readonly prefix: string;
  /** The region requests are signed for. */
  readonly region: string;
  /** The part size of puts of unknown size, and the floor for known sizes. */
  readonly basePartSize: number;
  /** Parts uploaded at once. */
  readonly queueSize: number;
  /** A printable endpoint for messages: the origin, or `AWS S3 (region)`. */
  readonly endpointLabel: string;
  /** The connection and no-progress timeouts of every request. */
  readonly timeouts: S3Timeouts;
  /** Values that must never appear in a message. */
  readonly secrets: readonly string[];
  /** The error context of one operation. */
  errorContext(action: string, signal?: AbortSignal): S3ErrorContext;
  /** The SDK and client, loaded on the first call. @throws STORAGE_UNAVAILABLE once closed or when the SDK is missing. */
  load(errorContext: S3ErrorContext): Promise<S3Runtime>;
  /** Runs one SDK call, mapping every failure. */
  call<T>(errorContext: S3ErrorContext, fn: (rt: S3Runtime) => Promise<T>): Promise<T>;
  /** Releases the client and its connections; later calls fail. */
  close(): Promise<void>;
}

/** An error as an aborted request throws it (mapped to CANCELLED). */
export function abortError(): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

/** The SDK package, imported on first use. */
interface S3Modules {
  sdk: typeof S3Sdk;
}

/** Imports the SDK packages. @throws STORAGE_UNAVAILABLE naming the packages to install. */
async function importS3Sdk(): Promise<S3Modules> {
  try {
    return { sdk: await import('@aws-sdk/client-s3') };
  } catch (error) {
    throw new InstanceImagesError(
      'STORAGE_UNAVAILABLE',
      'The s3 storage driver needs the package @aws-sdk/client-s3: install it next to instance-images',
      { cause: error },
    );
  }
}

/** The timeouts of the options, defaults applied. */
function timeoutsOf(options: S3StorageOptions): S3Timeouts {
  return {
    connectionMs: options.connectionTimeoutMs ?? S3_DEFAULT_CONNECTION_TIMEOUT_MS,
    noProgressMs: options.noProgressTimeoutMs ?? S3_DEFAULT_NO_PROGRESS_TIMEOUT_MS,
  };
}

/** Builds the client and the part uploader from the options. */
function buildS3Runtime(
  { sdk }: S3Modules,
  options: S3StorageOptions,
  { endpointLabel, timeouts }: { endpointLabel: string; timeouts: S3Timeouts },
): S3Runtime {
  const client = new sdk.S3Client({
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    forcePathStyle: options.forcePathStyle,
    ...(options.accessKeyId !== undefined && options.secretAccessKey !== undefined
      ? {
          credentials: {
            accessKeyId: options.accessKeyId,
            secretAccessKey: options.secretAccessKey,
            ...(options.sessionToken === undefined ? {} : { sessionToken: options.sessionToken }),
          },
        }
      : {}),
    // radosgw (and other S3-compatible services) reject the SDK's default aws-chunked
    // checksums on streamed bodies; send/validate checksums only where S3 requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Inactivity, not duration: `socketTimeout` (see ./timeouts).
    requestHandler: s3RequestHandlerOptions(timeouts),
  });
  makeS3TimeoutsFinal(client, endpointLabel, timeouts);
  const http = createNodePartTransport({ connectionTimeoutMs: timeouts.connectionMs, socketIdleTimeoutMs: timeouts.noProgressMs });
  const signer = s3ClientSigner(client);
  const clock = s3ClientClock(client);
  const parts = createS3PartUploader({ signer, clock, transport: http.transport });
  const plain = createS3PlainRequests({
    signer,
    clock,
    getTransport: http.getInto,
    putTransport: http.transport,
    headTransport: http.head,
    maxAttempts: S3_PART_MAX_ATTEMPTS,
    sleep: abortableSleep,
  });
  return { sdk, client, parts, plain, closeTransport: () => http.close() };
}

/** Creates the session of one driver instance from validated options. Nothing loads yet. */
export function createS3Session(options: S3StorageOptions): S3Session {
  const bucket = options.bucket;
  const endpointLabel = options.endpoint === undefined ? `AWS S3 (${options.region})` : new URL(options.endpoint).origin;
  const secrets = [options.secretAccessKey, options.sessionToken].filter((value): value is string => value !== undefined);
  const timeouts = timeoutsOf(options);
  let runtime: Promise<S3Runtime> | undefined;
  let closed = false;

  const load = (errorContext: S3ErrorContext): Promise<S3Runtime> => {
    if (closed)
      return Promise.reject(new InstanceImagesError('STORAGE_UNAVAILABLE', `The S3 storage driver for bucket "${bucket}" was closed`));
    runtime ??= (async () => {
      let modules: S3Modules;
      try {
        modules = await importS3Sdk();
      } catch (error) {
        // A failed import is not kept: the next call tries again (e.g. once the packages are installed).
        runtime = undefined;
        throw error;
      }
      return buildS3Runtime(modules, options, { endpointLabel, timeouts });
    })();
    return runtime.catch((error: unknown) => {
      throw toS3StorageError(error, errorContext);
    });
  };

  return {
    bucket,
    prefix: normalizeS3Prefix(options.prefix),
    region: options.region,
    basePartSize: options.partSizeBytes ?? S3_DEFAULT_PART_SIZE,
    queueSize: options.queueSize ?? S3_DEFAULT_QUEUE_SIZE,
    endpointLabel,
    timeouts,
    secrets,
    errorContext: (action, signal) => ({ action, bucket, endpoint: endpointLabel, secrets, timeouts, ...(signal ? { signal } : {}) }),
    load,
    async call(errorContext, fn) {
      const rt = await load(errorContext);
      try {
        return await fn(rt);
      } catch (error) {
        throw toS3StorageError(error, errorContext);
      }
    },
    async close() {
      closed = true;
      const current = runtime;
      runtime = undefined;
      if (current) {
        try {
          const loaded = await current;
          loaded.parts.close();
          loaded.closeTransport();
          loaded.client.destroy();
        } catch {
          // the SDK never loaded: nothing to release
        }
      }
    },
  };
}
