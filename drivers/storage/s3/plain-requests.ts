/**
 * Small objects by plain requests: whole objects read straight into a caller's buffer (the chunks
 * of a chunked image, read hundreds of times per deploy: the driver's `getBytes`), written from a
 * buffer (`putBytes`: the chunks of a capture) and asked for their size (`stat`: a capture asks
 * whether each chunk is already stored).
 *
 * Why: a request sent through `S3Client.send` runs the SDK's middleware stack, endpoint rules,
 * serializer or deserializer and body stream mixin, ≈ 1.5 ms of CPU each on the test machine
 * against ≈ 0.3 ms for a plain request, and leaves that much garbage per request; a body read then
 * travels through two more streams before it is copied. Here each request is one plain keep-alive
 * request signed by the client's own SigV4 signer (as the parts of a put are, see ./part-request): a
 * GET's body is copied once, into the buffer; a PUT is signed with the payload's sha256, so the
 * service checks the bytes.
 *
 * The URL is the client's: the first request of a driver instance goes through the SDK with a
 * build-step middleware that records where it was sent (protocol, host, port, the escaped path and
 * the signing scope its endpoint rules chose); later requests use that path with their own escaped
 * key in place of the first one. When the recorded path does not end with the first key escaped as
 * here (an addressing this module does not understand), every request stays on the SDK.
 * @module
 */
import type { Readable } from 'node:stream';
import { InstanceImagesError } from '../../../src/errors';
import { isS3NotFound, toS3StorageError } from './errors';
import { s3ObjectKey } from './options';
import {
  s3ErrorFromResponse,
  S3_OBJECT_TOO_LARGE,
  trackS3PartTarget,
  withS3Attempts,
  type GetIntoTransport,
  type PartHttpRequest,
  type PartHttpResponse,
  type PartTransport,
  type S3Clock,
  type S3PartTarget,
  type S3RequestSigner,
} from './part-request';
import { rfc3986 } from './presign';
import { abortError, type S3Session } from './session';

/** The sha256 of an empty payload, as a GET is signed. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** An object key escaped for a request path, segment by segment (RFC 3986, `/` kept). */
export function escapeS3KeyPath(objectKey: string): string {
  return objectKey.split('/').map(rfc3986).join('/');
}

/** Where later plain requests go: the recorded URL with the key cut off its path. */
export interface S3ReadBase extends Omit<S3PartTarget, 'path'> {
  /** The escaped path before the key (`/bucket/` or `/`). */
  pathPrefix: string;
}

/**
 * The base of later plain requests from the target an SDK request for `objectKey` was sent to, or null when its
 * path does not end with the key escaped by {@link escapeS3KeyPath}.
 */
export function s3ReadBase(target: S3PartTarget, objectKey: string): S3ReadBase | null {
  const escaped = escapeS3KeyPath(objectKey);
  if (!target.path.endsWith(`/${escaped}`)) return null;
  const { path, ...rest } = target;
  return { ...rest, pathPrefix: path.slice(0, path.length - escaped.length) };
}

/**
 * While `plain` has no base yet, records where `command` (an SDK request for `objectKey`) is sent;
 * the returned function, called once the command was sent (answered or not), makes that the base
 * of later plain requests.
 */
export function recordPlainBase(
  plain: S3PlainRequests,
  command: Parameters<typeof trackS3PartTarget>[0],
  region: string,
  objectKey: string,
): () => void {
  if (plain.base !== undefined) return () => undefined;
  const target = trackS3PartTarget(command, region);
  return () => {
    const recorded = target();
    if (recorded && plain.base === undefined) plain.base = s3ReadBase(recorded, objectKey);
  };
}

/** Small-object requests sent plainly once the base URL is known. */
export interface S3PlainRequests {
  /** The base of plain requests; undefined until a request through the SDK recorded it, null when it cannot be used. */
  base: S3ReadBase | null | undefined;
  /** GETs `objectKey` into `into`: its length, or null when it does not exist. */
  getInto(base: S3ReadBase, objectKey: string, into: Buffer, signal: AbortSignal): Promise<number | null>;
  /** PUTs `body` as `objectKey`, signed with its sha256 (lowercase hex) so the service checks it. */
  put(base: S3ReadBase, objectKey: string, body: Buffer, sha256: string, signal: AbortSignal): Promise<void>;
  /** HEADs `objectKey`: its size and modification time, or null when it does not exist. */
  head(base: S3ReadBase, objectKey: string, signal: AbortSignal): Promise<{ size: number; modifiedAt: Date } | null>;
}

/** What {@link createS3PlainRequests} needs. */
export interface S3PlainRequestsOptions {
  signer: S3RequestSigner;
  clock: S3Clock;
  /** Sends a GET whose body is read into a buffer. */
  getTransport: GetIntoTransport;
  /** Sends a PUT with a body. */
  putTransport: PartTransport;
  /** Sends a HEAD. */
  headTransport: (request: PartHttpRequest, signal: AbortSignal) => Promise<PartHttpResponse>;
  /** Attempts per request, the first included. */
  maxAttempts: number;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** An {@link S3PlainRequests}: per request one signature and one request, retried like a part. */
export function createS3PlainRequests(options: S3PlainRequestsOptions): S3PlainRequests {
  const { signer, clock } = options;
  /** Signs `method` on `objectKey` and sends it with `send`, retried like a part. */
  const attempt = <T>(
    base: S3ReadBase,
    objectKey: string,
    method: 'GET' | 'PUT' | 'HEAD',
    headers: Record<string, string>,
    signal: AbortSignal,
    send: (request: PartHttpRequest) => Promise<T>,
  ): Promise<T> => {
    const path = `${base.pathPrefix}${escapeS3KeyPath(objectKey)}`;
    const host = base.port === undefined ? base.hostname : `${base.hostname}:${base.port}`;
    const connectHost = base.hostname.startsWith('[') && base.hostname.endsWith(']') ? base.hostname.slice(1, -1) : base.hostname;
    return withS3Attempts(options, signal, async () => {
      const signed = await signer(
        {
          method,
          protocol: base.protocol,
          hostname: base.hostname,
          ...(base.port === undefined ? {} : { port: base.port }),
          path,
          query: {},
          headers: { host, ...headers },
        },
        { signingDate: new Date(Date.now() + clock.offset()), signingRegion: base.signingRegion, signingService: base.signingName },
      );
      return send({ protocol: base.protocol, host: connectHost, port: base.port, path, headers: signed.headers });
    });
  };
  return {
    base: undefined,
    getInto(base, objectKey, into, signal) {
      return attempt(base, objectKey, 'GET', { 'x-amz-content-sha256': EMPTY_SHA256 }, signal, async (request) => {
        const response = await options.getTransport(request, into, signal);
        if (response.status >= 200 && response.status < 300) return response.length;
        const error = s3ErrorFromResponse(response.status, response.body, response.headers);
        if (isS3NotFound(error)) return null;
        throw error;
      });
    },
    put(base, objectKey, body, sha256, signal) {
      const headers = { 'content-length': String(body.length), 'x-amz-content-sha256': sha256 };
      return attempt(base, objectKey, 'PUT', headers, signal, async (request) => {
        const response = await options.putTransport(request, body, signal);
        if (response.status >= 200 && response.status < 300) return;
        throw s3ErrorFromResponse(response.status, response.body, response.headers);
      });
    },
    head(base, objectKey, signal) {
      return attempt(base, objectKey, 'HEAD', { 'x-amz-content-sha256': EMPTY_SHA256 }, signal, async (request) => {
        const response = await options.headTransport(request, signal);
        if (response.status >= 200 && response.status < 300) {
          const size = Number(response.headers['content-length'] ?? 0);
          const modified =
            typeof response.headers['last-modified'] === 'string' ? Date.parse(response.headers['last-modified']) : Number.NaN;
          return {
            size: Number.isSafeInteger(size) && size >= 0 ? size : 0,
            modifiedAt: new Date(Number.isFinite(modified) ? modified : 0),
          };
        }
        const error = s3ErrorFromResponse(response.status, response.body, response.headers);
        if (isS3NotFound(error)) return null;
        throw error;
      });
    },
  };
}

/** VALIDATION_FAILED for an object longer than the buffer it is read into. */
function tooLarge(key: string, limit: number, cause?: unknown): InstanceImagesError {
  return new InstanceImagesError('VALIDATION_FAILED', `The object ${key} is larger than the ${limit} bytes allowed for it`, {
    ...(cause === undefined ? {} : { cause }),
    fields: [{ path: 'key', message: `holds more than ${limit} bytes` }],
  });
}

/** Copies a body into `into`. @throws VALIDATION_FAILED when it is longer. */
async function copyBody(body: Readable | undefined, key: string, into: Buffer): Promise<number> {
  let length = 0;
  if (body === undefined) return 0;
  try {
    for await (const part of body) {
      const chunk = part as Buffer;
      if (length + chunk.length > into.length) throw tooLarge(key, into.length);
      chunk.copy(into, length);
      length += chunk.length;
    }
  } finally {
    if (!body.destroyed) body.destroy();
  }
  return length;
}

/** Reads all of `key` into `into`: the driver's `getBytes`. */
export async function getS3Bytes(
  session: S3Session,
  key: string,
  into: Buffer,
  options: { signal?: AbortSignal } = {},
): Promise<number | null> {
  const { signal } = options;
  const errorContext = session.errorContext(`read "${key}"`, signal);
  if (signal?.aborted) throw toS3StorageError(abortError(), errorContext);
  const objectKey = s3ObjectKey(session.prefix, key);
  return session.call(errorContext, async ({ sdk, client, plain }) => {
    if (plain.base) {
      try {
        return await plain.getInto(plain.base, objectKey, into, signal ?? new AbortController().signal);
      } catch (error) {
        if ((error as { name?: unknown }).name === S3_OBJECT_TOO_LARGE) throw tooLarge(key, into.length, error);
        throw error;
      }
    }
    const command = new sdk.GetObjectCommand({ Bucket: session.bucket, Key: objectKey });
    const record = recordPlainBase(plain, command, session.region, objectKey);
    let response;
    try {
      response = await client.send(command, signal ? { abortSignal: signal } : {});
    } catch (error) {
      if (isS3NotFound(error)) return null;
      throw error;
    }
    record();
    const announced = response.ContentLength;
    if (announced !== undefined && announced > into.length) {
      (response.Body as Readable | undefined)?.destroy();
      throw tooLarge(key, into.length);
    }
    return copyBody(response.Body as Readable | undefined, key, into);
  });
}
