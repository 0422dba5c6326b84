/**
 * UploadPart as one plain keep-alive HTTP request, signed by the S3 client's own SigV4 signer.
 *
 * Why: a part sent through `S3Client.send` builds a fresh middleware stack, resolves the endpoint
 * rules, serializes through the schema and signs through several layers, and all of that stays
 * referenced while the part's 8 MiB travel (a few hundred ms). Young-generation collections during
 * that time promote it to the old generation, which then fills with dead request machinery
 * (≈ 60–80 KB per part measured) until V8 decides on a full collection: peak RSS grew with the object
 * size. This path keeps a few small objects per part.
 *
 * What it keeps from the SDK: the URL (protocol, host, port and escaped path) is the one the client
 * used for the upload's CreateMultipartUpload, so addressing (path-style or virtual-hosted, custom
 * endpoint, FIPS/dual-stack) is exactly the client's; the signer, credentials (static, session token
 * or the default chain) and clock offset are the client's; the payload is signed with its sha256 as
 * the SDK does for a Buffer body; errors have the SDK's shape (`name`/`Code`, `$metadata.httpStatusCode`),
 * so the driver maps them with the same code ({@link toS3StorageError}); transient failures are
 * retried like the SDK's standard strategy (3 attempts, exponential backoff with jitter), except a
 * request that reached its connection or no-progress timeout, which is final (see ./timeouts).
 * @module
 */
import { webcrypto } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3_DEFAULT_CONNECTION_TIMEOUT_MS, S3_DEFAULT_NO_PROGRESS_TIMEOUT_MS } from './options';
import { s3TimeoutError, s3TimeoutOf } from './timeouts';

/** Where the parts of one multipart upload go: the URL of its CreateMultipartUpload without the query. */
export interface S3PartTarget {
  /** `http:` or `https:`. */
  protocol: string;
  /** The host as the SDK built it (an IPv6 address in brackets). */
  hostname: string;
  /** The port, when not the protocol's default. */
  port: number | undefined;
  /** The escaped object path (`/bucket/key` or `/key`), exactly as signed. */
  path: string;
  /** The region the request is signed for. */
  signingRegion: string;
  /** The signing service name (`s3`). */
  signingName: string;
}

/** A request as the SDK's signer takes it (the `HttpRequest` fields it reads). */
export interface SignableRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
}

/** Signs a request (the S3 client's SigV4 signer, bound to its credentials). */
export type S3RequestSigner = (
  request: SignableRequest,
  options: { signingDate: Date; signingRegion: string; signingService: string },
) => Promise<{ headers: Record<string, string> }>;

/** One HTTP request as the transport sends it. */
export interface PartHttpRequest {
  protocol: string;
  /** The host to connect to (no brackets). */
  host: string;
  port: number | undefined;
  /** Path and query. */
  path: string;
  headers: Record<string, string>;
}

/** An HTTP answer: the status, the headers and (for an error status) the body's text. */
export interface PartHttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Sends one PUT with `body`; rejects on network failure, timeout (the driver's `S3TimeoutError`) or abort. */
export type PartTransport = (request: PartHttpRequest, body: Buffer, signal: AbortSignal) => Promise<PartHttpResponse>;

/** The answer to a GET read into a buffer: a success's body is in `into[0, length)`, an error's text in `body`. */
export interface GetIntoHttpResponse extends PartHttpResponse {
  /** Bytes of a success's body written into the buffer (0 for an error status). */
  length: number;
}

/**
 * Sends one GET and writes a success's body into `into` as it arrives (no other copy is kept);
 * rejects with an {@link S3ObjectTooLargeError} as soon as the body (or its announced length)
 * exceeds `into`, and like {@link PartTransport} otherwise.
 */
export type GetIntoTransport = (request: PartHttpRequest, into: Buffer, signal: AbortSignal) => Promise<GetIntoHttpResponse>;

/** The name of the error of a body longer than the buffer it is read into. */
export const S3_OBJECT_TOO_LARGE = 'S3ObjectTooLarge';

/** A body longer than the buffer it is read into (never retried). */
export interface S3ObjectTooLargeError extends Error {
  name: typeof S3_OBJECT_TOO_LARGE;
  /** The buffer's length. */
  limit: number;
}

function objectTooLarge(limit: number): S3ObjectTooLargeError {
  return Object.assign(new Error(`The object is larger than the ${limit} bytes expected`), {
    name: S3_OBJECT_TOO_LARGE,
    limit,
  }) as S3ObjectTooLargeError;
}

/** The client's clock offset (ms added to the local clock when signing), shared with the SDK. */
export interface S3Clock {
  offset(): number;
  setOffset(offsetMs: number): void;
}

/** What {@link createS3PartUploader} needs. */
export interface S3PartUploaderOptions {
  signer: S3RequestSigner;
  clock: S3Clock;
  /** Sends the requests; defaults to node:http(s) keep-alive agents ({@link createNodePartTransport}). */
  transport?: PartTransport;
  /** Attempts per part, the first included (the SDK's default is 3). */
  maxAttempts?: number;
  /** Waits before a retry; defaults to a timer that an abort cuts short. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Sends parts of multipart uploads. */
export interface S3PartUploader {
  /** Stores `body` as part `partNumber` of `uploadId` at `target` and returns its ETag (may be empty). */
  uploadPart(target: S3PartTarget, uploadId: string, partNumber: number, body: Buffer, signal: AbortSignal): Promise<string>;
  /** Closes the kept-alive connections. */
  close(): void;
}

/** The shape of an SDK service error, so that the driver's error mapping reads both alike. */
export interface S3ServiceErrorShape extends Error {
  Code?: string;
  $fault: 'client' | 'server';
  $metadata: { httpStatusCode: number; requestId?: string };
  /** The server's clock from the `Date` header, when it sent one (for clock-skew correction). */
  $serverTime?: number;
}

/** The SDK's default number of attempts. */
export const S3_PART_MAX_ATTEMPTS = 3;
/** Error bodies are read up to this many bytes (S3 error documents are well under 1 KiB). */
const MAX_ERROR_BODY = 64 * 1024;
/** Network error codes the SDK treats as transient. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
]);
/** Status codes the SDK treats as transient server errors. */
const TRANSIENT_STATUS = new Set([500, 502, 503, 504]);
/** S3 error codes that mean "slow down". */
const THROTTLING_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'EC2ThrottledException',
]);
/** S3 error codes that may mean the local clock is off. */
const CLOCK_SKEW_NAMES = new Set([
  'RequestTimeTooSkewed',
  'RequestExpired',
  'RequestInTheFuture',
  'AuthFailure',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
]);
/** How far the clocks may differ before a signature is re-made with the server's time (AWS allows 15 min). */
const CLOCK_SKEW_TOLERANCE_MS = 5 * 60 * 1000;

function abortError(): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

/** Query escaping as SigV4 canonicalises it (RFC 3986: `encodeURIComponent` plus `!'()*`). */
export function escapeS3QueryValue(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function xmlText(text: string): string {
  return text.replace(
    /&(lt|gt|quot|apos|amp);/g,
    (_, entity: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[entity] ?? '',
  );
}

function xmlElement(body: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([^<]*)</${name}>`).exec(body);
  return match?.[1] === undefined ? undefined : xmlText(match[1]);
}

/**
 * The error the SDK would throw for an S3 error answer: named after the XML `Code` (or `NotFound`
 * for a bare 404, `Unknown` otherwise), with `Code`, `$fault` and `$metadata.httpStatusCode`.
 */
export function s3ErrorFromResponse(status: number, body: string, headers: IncomingHttpHeaders = {}): S3ServiceErrorShape {
  const code = xmlElement(body, 'Code');
  const message = xmlElement(body, 'Message');
  const requestId =
    xmlElement(body, 'RequestId') ?? (typeof headers['x-amz-request-id'] === 'string' ? headers['x-amz-request-id'] : undefined);
  const error = new Error(message !== undefined && message !== '' ? message : 'UnknownError') as S3ServiceErrorShape;
  error.name = code ?? (status === 404 ? 'NotFound' : 'Unknown');
  if (code !== undefined) error.Code = code;
  error.$fault = status >= 500 ? 'server' : 'client';
  error.$metadata = { httpStatusCode: status, ...(requestId === undefined ? {} : { requestId }) };
  const serverTime = typeof headers.date === 'string' ? Date.parse(headers.date) : Number.NaN;
  if (Number.isFinite(serverTime)) error.$serverTime = serverTime;
  return error;
}

/** How a failed attempt is retried: not at all, after a backoff, or at once with a corrected clock. */
export type RetryDecision = { retry: false } | { retry: true; baseMs: number; clockOffsetMs?: number };

/**
 * The SDK standard strategy's classification of a failed attempt: network failures and timeouts,
 * HTTP 500/502/503/504 and throttling are retried (throttling after a longer backoff); a clock-skew
 * error is retried once the server's clock says the local one is off; anything else is final.
 */
export function retryDecision(error: unknown, localNowMs: number, currentOffsetMs: number): RetryDecision {
  const shape = (typeof error === 'object' && error !== null ? error : {}) as Partial<S3ServiceErrorShape> & { code?: unknown };
  const status = shape.$metadata?.httpStatusCode;
  const name = typeof shape.name === 'string' ? shape.name : undefined;
  // A request that reached its timeout is final: the service did not answer for the whole time.
  if (name === 'AbortError' || s3TimeoutOf(error) !== undefined) return { retry: false };
  if (status === 429 || (name !== undefined && THROTTLING_NAMES.has(name))) return { retry: true, baseMs: 500 };
  if (status !== undefined && TRANSIENT_STATUS.has(status)) return { retry: true, baseMs: 100 };
  if (name !== undefined && CLOCK_SKEW_NAMES.has(name) && shape.$serverTime !== undefined) {
    const skew = shape.$serverTime - (localNowMs + currentOffsetMs);
    if (Math.abs(skew) > CLOCK_SKEW_TOLERANCE_MS) return { retry: true, baseMs: 0, clockOffsetMs: shape.$serverTime - localNowMs };
    return { retry: false };
  }
  if (status !== undefined) return { retry: false };
  if (name === 'TimeoutError' || (typeof shape.code === 'string' && TRANSIENT_CODES.has(shape.code))) return { retry: true, baseMs: 100 };
  return { retry: false };
}

/** The SDK's backoff: a random delay up to `base × 2^(attempt−1)`, at most 20 s. */
export function retryDelayMs(baseMs: number, attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(20_000, baseMs * 2 ** (attempt - 1)));
}

/** Waits `ms`; an abort of `signal` ends the wait with an AbortError. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError());
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Timeouts of {@link createNodePartTransport}. */
export interface NodePartTransportOptions {
  /** How long to wait for a TCP (and TLS) connection. */
  connectionTimeoutMs: number;
  /** How long a request may sit without socket activity (the storage's `noProgressTimeoutMs`). */
  socketIdleTimeoutMs: number;
}

/** The transports of {@link createNodePartTransport}, sharing one keep-alive agent per protocol. */
export interface NodeS3Transport {
  /** PUTs a part. */
  transport: PartTransport;
  /** GETs an object into a buffer. */
  getInto: GetIntoTransport;
  /** Sends a HEAD (the answer's headers; no body). */
  head: (request: PartHttpRequest, signal: AbortSignal) => Promise<PartHttpResponse>;
  /** Closes the kept-alive connections. */
  close(): void;
}

/**
 * A {@link PartTransport}, a {@link GetIntoTransport} and a HEAD over node:http(s) with one
 * keep-alive agent per protocol, and their `close`.
 */
export function createNodePartTransport(options: NodePartTransportOptions): NodeS3Transport {
  let http: HttpAgent | undefined;
  let https: HttpsAgent | undefined;
  const send = (request: PartHttpRequest, method: 'PUT' | 'GET' | 'HEAD', body: Buffer | null, into: Buffer | null, signal: AbortSignal) =>
    new Promise<GetIntoHttpResponse>((resolve, reject) => {
      if (signal.aborted) {
        reject(abortError());
        return;
      }
      const secure = request.protocol === 'https:';
      const agent = secure
        ? (https ??= new HttpsAgent({ keepAlive: true, maxSockets: 50 }))
        : (http ??= new HttpAgent({ keepAlive: true, maxSockets: 50 }));
      const req = (secure ? httpsRequest : httpRequest)({
        agent,
        host: request.host,
        port: request.port,
        method,
        path: request.path,
        headers: request.headers,
      });
      let settled = false;
      const settle = (error: unknown, response?: GetIntoHttpResponse): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        signal.removeEventListener('abort', onAbort);
        if (response !== undefined && error === undefined) resolve(response);
        else reject(error);
      };
      const fail = (error: Error): void => {
        settle(error);
        req.destroy(error);
      };
      const onAbort = (): void => fail(abortError());
      signal.addEventListener('abort', onAbort, { once: true });
      // A timeout settles first: once an answer has begun, the destroyed request would otherwise
      // end as a closed connection (retried) instead of the timeout (final).
      const connectTimer = setTimeout(() => {
        fail(s3TimeoutError('connect', options.connectionTimeoutMs, request.host));
      }, options.connectionTimeoutMs);
      req.once('socket', (socket) => {
        if (socket.connecting) socket.once('connect', () => clearTimeout(connectTimer));
        else clearTimeout(connectTimer);
      });
      // The socket's idle timeout: no byte of the part sent and no answer for that long (a part that
      // keeps moving on a slow link is never cut).
      req.setTimeout(options.socketIdleTimeoutMs, () => {
        fail(s3TimeoutError('no-progress', options.socketIdleTimeoutMs, request.host));
      });
      let answered = false;
      // Every later 'error' lands here too (an unhandled one would crash the process). Once an answer
      // has begun (e.g. a 403 before the whole body was sent), a failed write (EPIPE) is not the
      // outcome: the answer is.
      req.on('error', (error) => {
        if (!answered) settle(error);
      });
      req.once('response', (response: IncomingMessage) => {
        answered = true;
        const status = response.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let length = 0;
        const success = status >= 200 && status < 300;
        if (success && into !== null) {
          const announced = Number(response.headers['content-length']);
          if (Number.isFinite(announced) && announced > into.length) return fail(objectTooLarge(into.length));
        }
        response.on('data', (chunk: Buffer) => {
          if (success && into !== null) {
            // A success's body goes straight into the caller's buffer.
            if (length + chunk.length > into.length) return fail(objectTooLarge(into.length));
            chunk.copy(into, length);
            length += chunk.length;
          } else if (!success && length < MAX_ERROR_BODY) {
            // Any other success body is drained (UploadPart sends none); an error's is kept, bounded.
            chunks.push(chunk);
            length += chunk.length;
          }
        });
        response.on('error', (error) => settle(error));
        response.once('end', () =>
          settle(undefined, {
            status,
            headers: response.headers,
            body: chunks.length === 0 ? '' : Buffer.concat(chunks).toString('utf8', 0, MAX_ERROR_BODY),
            length: success && into !== null ? length : 0,
          }),
        );
        response.once('close', () => {
          if (!response.complete)
            settle(Object.assign(new Error(`The connection to ${request.host} closed before the answer ended`), { code: 'ECONNRESET' }));
        });
      });
      req.end(body ?? undefined);
    });
  return {
    transport: (request, body, signal) => send(request, 'PUT', body, null, signal),
    getInto: (request, into, signal) => send(request, 'GET', null, into, signal),
    head: (request, signal) => send(request, 'HEAD', null, null, signal),
    close() {
      http?.destroy();
      https?.destroy();
      http = undefined;
      https = undefined;
    },
  };
}

/**
 * Runs `attempt` until it succeeds, retrying as the SDK's standard strategy does
 * ({@link retryDecision}): at most `maxAttempts` times, after a backoff, or at once with the
 * clock corrected. The caller's signal ends it (AbortError).
 */
export async function withS3Attempts<T>(
  options: { maxAttempts: number; sleep: (ms: number, signal: AbortSignal) => Promise<void>; clock: S3Clock },
  signal: AbortSignal,
  attempt: () => Promise<T>,
): Promise<T> {
  for (let n = 1; ; n += 1) {
    if (signal.aborted) throw abortError();
    try {
      return await attempt();
    } catch (error) {
      if (signal.aborted) throw abortError();
      const decision = n < options.maxAttempts ? retryDecision(error, Date.now(), options.clock.offset()) : ({ retry: false } as const);
      if (!decision.retry) throw error;
      if (decision.clockOffsetMs !== undefined) options.clock.setOffset(decision.clockOffsetMs);
      const delay = retryDelayMs(decision.baseMs, n);
      if (delay > 0) await options.sleep(delay, signal);
    }
  }
}

/**
 * The hex sha256 of a part's body, computed off the event loop: WebCrypto's digest runs on libuv's
 * thread pool (on a copy of the bytes, so the caller may refill its buffer), leaving the process's
 * main thread to the bytes still arriving (an SSH channel's decryption, the storage wrapper's own
 * sha256 of the whole object, the requests in flight).
 */
async function payloadSha256(body: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', body)).toString('hex');
}

/**
 * An {@link S3PartUploader}: per part one sha256 of the body (off the event loop, {@link payloadSha256}), one signature and one request, retried
 * on transient failures. The caller's signal aborts the request in flight and any wait for a retry.
 */
export function createS3PartUploader(options: S3PartUploaderOptions & Partial<NodePartTransportOptions>): S3PartUploader {
  const maxAttempts = options.maxAttempts ?? S3_PART_MAX_ATTEMPTS;
  const sleep = options.sleep ?? abortableSleep;
  const owned =
    options.transport === undefined
      ? createNodePartTransport({
          connectionTimeoutMs: options.connectionTimeoutMs ?? S3_DEFAULT_CONNECTION_TIMEOUT_MS,
          socketIdleTimeoutMs: options.socketIdleTimeoutMs ?? S3_DEFAULT_NO_PROGRESS_TIMEOUT_MS,
        })
      : undefined;
  const transport = options.transport ?? owned!.transport;
  const { signer, clock } = options;

  return {
    async uploadPart(target, uploadId, partNumber, body, signal) {
      const payloadHash = await payloadSha256(body);
      const host = target.port === undefined ? target.hostname : `${target.hostname}:${target.port}`;
      const connectHost = target.hostname.startsWith('[') && target.hostname.endsWith(']') ? target.hostname.slice(1, -1) : target.hostname;
      const path = `${target.path}?partNumber=${partNumber}&uploadId=${escapeS3QueryValue(uploadId)}`;
      return withS3Attempts({ maxAttempts, sleep, clock }, signal, async () => {
        const signed = await signer(
          {
            method: 'PUT',
            protocol: target.protocol,
            hostname: target.hostname,
            ...(target.port === undefined ? {} : { port: target.port }),
            path: target.path,
            query: { partNumber: String(partNumber), uploadId },
            headers: { host, 'content-length': String(body.length), 'x-amz-content-sha256': payloadHash },
          },
          { signingDate: new Date(Date.now() + clock.offset()), signingRegion: target.signingRegion, signingService: target.signingName },
        );
        const response = await transport(
          { protocol: target.protocol, host: connectHost, port: target.port, path, headers: signed.headers },
          body,
          signal,
        );
        if (response.status >= 200 && response.status < 300) {
          const etag = response.headers.etag;
          return typeof etag === 'string' ? etag : '';
        }
        throw s3ErrorFromResponse(response.status, response.body, response.headers);
      });
    },
    close() {
      owned?.close();
    },
  };
}

/** The fields of the request a build-step middleware sees that give the part URL. */
interface BuiltRequest {
  protocol?: unknown;
  hostname?: unknown;
  port?: unknown;
  path?: unknown;
}

/** The handler context fields with the signing scheme the endpoint rules chose. */
interface EndpointContext {
  endpointV2?: { properties?: { authSchemes?: { signingRegion?: unknown; signingName?: unknown }[] } };
}

/**
 * Records the URL `command` (a CreateMultipartUpload, GetObject, PutObject or HeadObject) is sent to, at the build step (after the endpoint rules ran, before
 * signing), and the signing scope the rules chose (`region` and `s3` when they name none). The
 * returned function gives it once the command was sent.
 */
export function trackS3PartTarget(
  command:
    | Pick<CreateMultipartUploadCommand, 'middlewareStack'>
    | Pick<GetObjectCommand, 'middlewareStack'>
    | Pick<PutObjectCommand, 'middlewareStack'>
    | Pick<HeadObjectCommand, 'middlewareStack'>,
  region: string,
): () => S3PartTarget | undefined {
  let target: S3PartTarget | undefined;
  // Every S3 command's stack takes the same build-step middleware (it reads the request only).
  (command.middlewareStack as CreateMultipartUploadCommand['middlewareStack']).add(
    (next, handlerContext) => async (args) => {
      const { protocol, hostname, port, path } = args.request as BuiltRequest;
      const scheme = (handlerContext as EndpointContext).endpointV2?.properties?.authSchemes?.[0];
      if (typeof protocol === 'string' && typeof hostname === 'string' && typeof path === 'string') {
        target = {
          protocol,
          hostname,
          port: typeof port === 'number' ? port : undefined,
          path,
          signingRegion: typeof scheme?.signingRegion === 'string' ? scheme.signingRegion : region,
          signingName: typeof scheme?.signingName === 'string' ? scheme.signingName : 's3',
        };
      }
      return next(args);
    },
    { step: 'build', name: 'instanceImagesPartTarget' },
  );
  return () => target;
}

/** The client's own SigV4 signer (its credentials, session token and S3 escaping rules), made once. */
export function s3ClientSigner(client: S3Client): S3RequestSigner {
  const config = client.config;
  let signer: ReturnType<typeof config.signer> | undefined;
  return async (request, signing) => {
    signer ??= config
      .signer({ name: 'sigv4', signingName: signing.signingService, signingRegion: signing.signingRegion, properties: {} })
      .catch((error: unknown) => {
        signer = undefined;
        throw error;
      });
    const signed = await (await signer).sign(request as Parameters<Awaited<typeof signer>['sign']>[0], signing);
    return { headers: signed.headers };
  };
}

/** The client's clock offset, shared: a correction by either path serves both. */
export function s3ClientClock(client: S3Client): S3Clock {
  const config = client.config;
  return {
    offset: () => config.systemClockOffset,
    setOffset: (offsetMs) => {
      config.systemClockOffset = offsetMs;
    },
  };
}
